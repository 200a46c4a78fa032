"""Chat bridges: one process per platform account, carrying its live chat to the channel.

A bridge only asks: it publishes viewers' comments to the channel's questions topic and
audience events (entering, likes, follows, gifts) to its audience topic, as its own broker
user, and never changes what airs. The engine screens everything that arrives.
"""
