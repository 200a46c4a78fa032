"""Service sites: the union's 职工服务站, 户外劳动者驿站, 法律援助站 and 职工书屋 on the map.

A sites dataset (CSV or GeoJSON, checked line by line and imported into the store) and a
gazetteer of the city's towns, streets and landmarks let the host answer "where is the nearest
驿站", "is there a 职工服务站 in 小榄镇", "is the legal-aid station open now" with up to three
sites, and show them on a map card while the answer airs.
"""
