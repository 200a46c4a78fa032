"""Questions about service sites, answered the way a viewer needs: the right sites in the
right order, said aloud with open/closed, distance and phone digits; and every question that
is not about finding a site (a procedure, a benefit, chatter) left to the knowledge base.

A fixed list of 39 fictional sites across ten towns and all four kinds (with hours that are
open or closed at the fixed times used) makes every answer exact. The shipped sample dataset,
when present, is checked against an independent brute-force search.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from anchor.sites.dataset import load_sites
from anchor.sites.desk import SiteDesk
from anchor.sites.finder import SiteFinder
from anchor.sites.gazetteer import Gazetteer, load_gazetteer, read_places
from anchor.sites.hours import is_open
from anchor.sites.intent import MAX_QUESTION_CHARS, read_site_question
from anchor.sites.model import Place, Site, SiteKind, SiteQuery
from anchor.sites.reply import (
    MAX_SENTENCE_CHARS,
    SAMPLE_NOTICE,
    compose_reply,
    speak_hours_en,
    speak_hours_zh,
    speak_phone,
)
from anchor.yamlsource import SourceError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sites" / "sample-zhongshan.csv"
CITY = ZoneInfo("Asia/Shanghai")
WED = datetime(2025, 3, 5, 10, 30, tzinfo=CITY)  # an ordinary Wednesday morning
NIGHT = datetime(2025, 3, 5, 21, 30, tzinfo=CITY)
SUN = datetime(2025, 3, 9, 10, 0, tzinfo=CITY)

R, S, L, B = SiteKind.REST, SiteKind.SERVICE, SiteKind.LEGAL, SiteKind.BOOKS
# id, name, kind, town (as staff write it: "石岐区", "小榄", "火炬开发区"), address, lon, lat,
# hours (OSM), phone.
ROWS = [
    ("r-sq-1", "石岐孙文西路户外劳动者驿站", R, "石岐街道", "孙文西路88号旁",
     113.3745, 22.5235, "24/7", "0760-88230001"),
    ("r-sq-2", "石岐岐江公园户外劳动者驿站", R, "石岐街道", "岐江公园东门",
     113.3730, 22.5290, "Mo-Su 07:00-21:00", "0760-88230002"),
    ("r-sq-3", "石岐悦来南路户外劳动者驿站", R, "石岐区", "悦来南路12号",
     113.3850, 22.5240, "Mo-Fr 08:00-18:00", None),
    ("r-dq-1", "东区兴中广场户外劳动者驿站", R, "东区街道", "兴中道1号兴中广场西侧",
     113.3895, 22.5168, "Mo-Su 08:00-20:00", "0760-88230011"),
    ("r-dq-2", "东区紫马岭户外劳动者驿站", R, "东区", "紫马岭公园北门",
     113.4030, 22.5060, "Mo-Fr 09:00-17:30", "0760-88230012"),
    ("r-xq-1", "西区富华道户外劳动者驿站", R, "西区街道", "富华道32号",
     113.3590, 22.5255, "Mo-Sa 08:00-18:00", "0760-88230021"),
    ("r-nq-1", "南区城南户外劳动者驿站", R, "南区街道", "城南二路5号",
     113.3720, 22.4830, "Mo-Su 07:00-21:00", "0760-88230031"),
    ("r-xl-1", "小榄升平中路户外劳动者驿站", R, "小榄镇", "升平中路20号",
     113.2475, 22.6668, "Mo-Fr 08:30-17:30; PH closed", "0760-22880001"),
    ("r-xl-2", "小榄东升户外劳动者驿站", R, "小榄镇", "东升同茂大道8号",
     113.2990, 22.6160, "Mo-Su 07:00-19:00", "13800001234"),
    ("r-xl-3", "小榄站前户外劳动者驿站", R, "小榄镇", "小榄站广场",
     113.2630, 22.6370, "Mo-Fr 09:00-12:00,14:00-17:30", "0760-22880003"),
    ("r-gz-1", "古镇灯都户外劳动者驿站", R, "古镇镇", "中兴大道灯饰城北",
     113.1935, 22.6130, "Mo-Su 08:00-20:00", "0760-22330001"),
    ("r-zsg-1", "火炬张家边户外劳动者驿站", R, "中山港街道", "中山港大道张家边段",
     113.4685, 22.5455, "24/7", "0760-85590001"),
    ("r-zsg-2", "中山站前户外劳动者驿站", R, "中山港街道", "中山站东广场",
     113.4430, 22.5535, "Mo-Fr 06:00-10:00", "0760-85590002"),
    ("r-zsg-3", "火炬濠头户外劳动者驿站", R, "中山港街道", "濠头大道5号",
     113.4380, 22.5560, "Mo-Su 08:00-22:00", None),
    ("r-sx-1", "沙溪隆都户外劳动者驿站", R, "沙溪镇", "星宝路1号",
     113.3230, 22.5290, "Mo-Su 07:00-21:00", "0760-87770002"),
    ("r-sxz-1", "三乡雅居乐户外劳动者驿站", R, "三乡镇", "雅居乐路10号",
     113.4305, 22.3505, "Mo-Su 07:00-19:00", None),
    ("r-tz-1", "坦洲界狮南路户外劳动者驿站", R, "坦洲镇", "界狮南路16号",
     113.4690, 22.2620, "Mo-Sa 08:00-18:00", "0760-86660001"),
    ("s-xl-1", "小榄镇职工服务中心", S, "小榄镇", "民安中路1号",
     113.2505, 22.6690, "Mo-Fr 09:00-17:30", "0760-22110001"),
    ("s-xl-2", "小榄东升职工服务站", S, "小榄", "东升兆益路3号",
     113.3010, 22.6150, "Mo-Fr 09:00-17:00", "0760-22110002"),
    ("s-sq-1", "石岐街道职工服务站", S, "石岐街道", "孙文中路100号",
     113.3812, 22.5213, "Mo-Fr 08:30-17:30", "0760-88110001"),
    ("s-dq-1", "中山市职工服务中心", S, "东区街道", "兴中道18号",
     113.3920, 22.5182, "Mo-Fr 09:00-12:00,14:00-17:30; Sa 09:00-12:00", "0760-88110000"),
    ("s-nq-1", "南区职工服务站", S, "南区街道", "岐关西路60号",
     113.3745, 22.4975, "Mo-Fr 09:00-17:30", "0760-88110031"),
    ("s-gz-1", "古镇镇职工服务站", S, "古镇镇", "东兴中路2号",
     113.1890, 22.6110, "Mo-Fr 09:00-17:30", "0760-22330011"),
    ("s-zsg-1", "火炬开发区职工服务中心", S, "火炬开发区", "康乐大道9号",
     113.4810, 22.5460, "Mo-Fr 09:00-17:30", "0760-85590011"),
    ("s-nl-1", "南朗街道职工服务站", S, "南朗街道", "岭南路6号",
     113.5390, 22.4990, "Mo-Fr 09:00-17:30", None),
    ("s-sx-1", "沙溪镇职工服务站", S, "沙溪镇", "岐江公路沙溪段28号",
     113.3210, 22.5310, "Mo-Fr 09:00-17:30", "0760-87770001"),
    ("s-tz-1", "坦洲镇职工服务站", S, "坦洲镇", "坦神北路12号",
     113.4710, 22.2590, "Mo-Fr 09:00-17:30", "0760-86660011"),
    ("l-dq-1", "中山市总工会法律援助站", L, "东区街道", "兴中道18号二楼",
     113.3921, 22.5183, "Mo-Fr 09:00-12:00,14:00-17:30", "0760-88110012"),
    ("l-xl-1", "小榄镇工会法律援助工作站", L, "小榄镇", "民安中路1号三楼",
     113.2506, 22.6691, "Tu,Th 14:00-17:30", "0760-22110012"),
    ("l-sq-1", "石岐街道法律援助站", L, "石岐街道", "孙文中路100号二楼",
     113.3813, 22.5214, "Mo-Fr 09:00-17:30", "0760-88110021"),
    ("l-zsg-1", "火炬开发区工会法律援助站", L, "中山港街道", "康乐大道9号二楼",
     113.4811, 22.5461, "We 09:00-17:00", "0760-85590012"),
    ("b-sq-1", "石岐职工书屋", B, "石岐街道", "孙文西路文化馆二楼",
     113.3760, 22.5228, "Tu-Su 09:00-21:00", "0760-88330001"),
    ("b-dq-1", "东区职工书屋", B, "东区街道", "起湾道6号",
     113.4120, 22.5205, "Mo-Fr 09:00-17:30", None),
    ("b-dq-2", "利和职工书屋", B, "东区街道", "利和广场三楼",
     113.3975, 22.5145, "Mo-Su 10:00-22:00", "0760-88330003"),
    ("b-xl-1", "小榄职工书屋", B, "小榄", "升平中路文化中心",
     113.2480, 22.6660, "Sa,Su 09:00-17:00", "0760-22330021"),
    ("b-gz-1", "古镇职工书屋", B, "古镇镇", "灯饰城服务中心三楼",
     113.1920, 22.6115, "Mo-Fr 09:00-17:00", None),
    ("b-zsg-1", "火炬职工书屋", B, "火炬开发区", "张家边社区中心",
     113.4670, 22.5440, "Mo-Su 09:00-21:00", "0760-85590021"),
    ("b-nl-1", "翠亨职工书屋", B, "南朗街道", "翠亨村游客中心旁",
     113.5310, 22.4470, "Tu-Su 09:00-17:00", None),
    ("b-sxz-1", "三乡职工书屋", B, "三乡镇", "雅居乐路3号",
     113.4310, 22.3510, "Mo-Fr 09:00-17:30", "0760-86880021"),
]  # fmt: skip
SITES = [
    Site(id=i, name=n, kind=k, town=t, address=a, lon=lo, lat=la, hours=h, phone=p)
    for i, n, k, t, a, lo, la, h, p in ROWS
]

# Question, when asked, the sites named (by id, in the order named), words the answer says.
CASES = [
    # Nearest to a landmark or street.
    (
        "离中山站最近的驿站在哪？",
        WED,
        ["r-zsg-2", "r-zsg-3", "r-zsg-1"],
        [
            "离中山站最近的户外劳动者驿站：",
            "第一个，中山站前户外劳动者驿站，约100米。",
            "现在没开门，开放时间是周一至周五早上六点到上午十点。",
            "电话：零七六零，八五五九，零零零二。",
            # The nearest is closed: the nearest open one is told in full too.
            "现在开着，开放时间是每天早上八点到晚上十点。",
        ],
    ),
    (
        "孙文西路步行街附近有没有书屋",
        WED,
        ["b-sq-1", "b-dq-2", "b-dq-1"],
        [
            "第一个，石岐职工书屋，约200米。",
            "地址：孙文西路文化馆二楼。",
            "现在开着，开放时间是周二至周日上午九点到晚上九点。",
            "电话：零七六零，八八三三，零零零一。",
        ],
    ),
    (
        "兴中广场旁边的法律援助站",
        WED,
        ["l-dq-1", "l-sq-1", "l-zsg-1"],
        ["离兴中广场最近的法律援助站：", "中山市总工会法律援助站，约300米。"],
    ),
    (
        "中山纪念堂附近有职工服务站吗",
        WED,
        ["s-sq-1", "s-dq-1", "s-nq-1"],
        [
            "第一个，石岐街道职工服务站，不到一百米。",
            "现在开着，开放时间是周一至周五早上八点半到下午五点半。",
        ],
    ),
    (
        "岐江公园周边哪里能热饭",
        WED,
        ["r-sq-2", "r-sq-1", "r-xq-1"],
        ["离岐江公园最近的户外劳动者驿站：", "开放时间是每天早上七点到晚上九点。"],
    ),
    (
        "古镇灯饰城附近能充电的地方",
        WED,
        ["r-gz-1", "r-xl-3", "r-xl-1"],
        ["古镇灯都户外劳动者驿站，约100米。"],
    ),
    (
        "中山港客运码头附近有没有驿站",
        WED,
        ["r-zsg-1", "r-zsg-2", "r-zsg-3"],
        ["约9.8公里", "约12公里"],
    ),
    (
        "我在利和广场，最近的书屋在哪",
        WED,
        ["b-dq-2", "b-dq-1", "b-sq-1"],
        ["利和职工书屋，不到一百米。"],
    ),
    (
        "紫马岭公园旁边有驿站吗",
        WED,
        ["r-dq-2", "r-dq-1", "r-sq-3"],
        ["约300米", "约2.1公里", "约3公里"],
    ),
    (
        "孙中山故居附近有没有职工书屋",
        WED,
        ["b-nl-1", "b-zsg-1", "b-sxz-1"],
        ["翠亨职工书屋，约200米。"],
    ),
    (
        "富华总站附近哪里可以喝水",
        WED,
        ["r-xq-1", "r-sq-2", "r-sq-1"],
        ["西区富华道户外劳动者驿站，约400米。"],
    ),
    (
        "想看书，离岐江公园近一点的书屋",
        WED,
        ["b-sq-1", "b-dq-2", "b-dq-1"],
        ["石岐职工书屋，约900米。"],
    ),
    (
        "兴中道附近哪有法律援助，急！",
        WED,
        ["l-dq-1", "l-sq-1", "l-zsg-1"],
        ["开放时间是周一至周五上午九点到中午十二点、下午两点到五点半。"],
    ),
    # Near a town: measured from its centre.
    (
        "石岐附近能喝水歇脚的地方",
        WED,
        ["r-sq-1", "r-sq-3", "r-sq-2"],
        ["石岐街道附近的户外劳动者驿站：", "石岐悦来南路户外劳动者驿站，约800米，现在开着。"],
    ),
    # In a town, whatever its name is written as in the data (石岐区, 小榄, 火炬开发区).
    (
        "小榄镇有没有职工服务站？",
        WED,
        ["s-xl-1", "s-xl-2"],
        [
            "小榄镇有两个职工服务站。",
            "第二个，小榄东升职工服务站，约8公里，现在开着。",
        ],
    ),
    ("石岐有几个驿站", WED, ["r-sq-1", "r-sq-3", "r-sq-2"], ["石岐街道有三个户外劳动者驿站。"]),
    ("东区的书屋", WED, ["b-dq-2", "b-dq-1"], ["东区街道有两个职工书屋。"]),
    (
        "火炬区有书屋吗",
        WED,
        ["b-zsg-1"],
        ["中山港街道有一个职工书屋。", "火炬职工书屋，约1.3公里。"],
    ),
    ("坦洲镇的职工服务站电话多少", WED, ["s-tz-1"], ["电话：零七六零，八六六六，零零一一。"]),
    ("三乡哪里有书屋", WED, ["b-sxz-1"], ["三乡镇有一个职工书屋。"]),
    (
        "小榄有哪些驿站",
        WED,
        ["r-xl-1", "r-xl-3", "r-xl-2"],
        [
            "开放时间是周一至周五早上八点半到下午五点半，节假日休息。",
            "第二个，小榄站前户外劳动者驿站，约3.6公里，现在开着。",
        ],
    ),
    (
        "小榄镇有哪些站点",
        WED,
        ["r-xl-1", "b-xl-1", "s-xl-1"],
        ["小榄镇有七个服务站点，先说离中心最近的三个。"],
    ),
    (
        "神湾镇有没有书屋",
        WED,
        ["b-sxz-1"],
        ["神湾镇暂时没有职工书屋。", "离那里最近的一个在三乡镇："],
    ),
    # Open now, opening hours.
    (
        "中山站附近的驿站现在开门吗",
        WED,
        ["r-zsg-2", "r-zsg-3", "r-zsg-1"],
        ["现在没开门", "现在开着的有："],
    ),
    (
        "石岐附近现在还开着的驿站",
        NIGHT,
        ["r-sq-1", "r-zsg-3", "r-zsg-1"],
        ["石岐街道附近、现在开着的户外劳动者驿站："],
    ),
    (
        "利和广场附近的书屋开到几点",
        NIGHT,
        ["b-dq-2"],
        ["现在开着，开放时间是每天上午十点到晚上十点。"],
    ),
    (
        "小榄镇法律援助站现在开着吗",
        WED,
        ["l-xl-1"],
        ["现在没开门，开放时间是周二、周四下午两点到五点半。"],
    ),
    ("东区职工服务中心周日开门吗", SUN, ["s-dq-1"], ["现在没开门，", "周六上午九点到中午十二点。"]),
    ("东区职工服务中心几点下班", NIGHT, ["s-dq-1"], ["现在没开门"]),
    # Colloquial and mistyped.
    ("石歧哪里有译站", WED, ["r-sq-1", "r-sq-3", "r-sq-2"], ["石岐街道有三个户外劳动者驿站。"]),
    ("小揽有法援站吗", WED, ["l-xl-1"], ["小榄镇有一个法律援助站。"]),
    (
        "在东区 想找个地方吹空调歇会",
        WED,
        ["r-dq-2", "r-dq-1"],
        ["东区街道有两个户外劳动者驿站。", "约1公里"],
    ),
    ("火车站旁边有没有能歇脚的驿站啊", WED, ["r-zsg-2", "r-zsg-3", "r-zsg-1"], ["离中山站最近的"]),
    # No place: where is the viewer?
    ("离我最近的驿站在哪？", WED, [], ["您在哪个镇街？", "我帮您找最近的户外劳动者驿站。"]),
    ("法律援助站几点开门？", WED, [], ["您在哪个镇街？"]),
    ("附近有没有法律援助站", WED, [], ["您在哪个镇街？"]),
    # English.
    (
        "where is the nearest rest station near Zhongshan station?",
        WED,
        ["r-zsg-2", "r-zsg-3", "r-zsg-1"],
        [
            "The nearest outdoor workers' rest stations to Zhongshan Station:",
            "First: 中山站前户外劳动者驿站, about 100 metres away.",
            "Closed now.",
            "Hours: Monday to Friday, 6 am to 10 am.",
            "Phone: zero seven six zero, eight five five nine, zero zero zero two.",
        ],
    ),
    (
        "near Sun Yat-sen Memorial Hall, any legal aid station?",
        WED,
        ["l-sq-1", "l-dq-1", "l-zsg-1"],
        ["First: 石岐街道法律援助站, less than 100 metres away.", "Open now."],
    ),
    (
        "Is there a library in Xiaolan?",
        WED,
        ["b-xl-1"],
        ["Xiaolan has one workers' library:", "Closed now.", "Hours: weekends, 9 am to 5 pm."],
    ),
    (
        "is the legal aid station near Shiqi open now?",
        WED,
        ["l-sq-1", "l-dq-1", "l-zsg-1"],
        ["The nearest legal aid stations to Shiqi:"],
    ),
    (
        "What are the opening hours of the workers' library in Guzhen?",
        WED,
        ["b-gz-1"],
        ["Guzhen has one workers' library:", "Hours: Monday to Friday, 9 am to 5 pm."],
    ),
    (
        "Shiqi got any rest stop nearby?",
        WED,
        ["r-sq-1", "r-sq-3", "r-sq-2"],
        ["about 400 metres away"],
    ),
    ("XIAOLAN library??", WED, ["b-xl-1"], ["Closed now."]),
    (
        "Where's the nearest rest station? I'm near the ferry terminal",
        WED,
        ["r-zsg-1", "r-zsg-2", "r-zsg-3"],
        ["to Zhongshan Port Ferry Terminal"],
    ),
]

# Not about finding a site: the knowledge base answers (several are its own phrasings).
NOT_SITE = [
    "法律援助怎么申请",
    "法律援助有什么条件",
    "互助保障怎么申请理赔？",
    "住院了互助金咋报",
    "劳动合同到期不续签有补偿吗",
    "干了半年老板都不跟我签合同",
    "工会请律师收钱吗",
    "去哪里找工会的律师",
    "法律援助在哪里申请",
    "驿站能充电喝水吗",
    "不是会员能去驿站休息吗",
    "驿站收费吗",
    "户外劳动者服务站提供什么服务",
    "书屋能借书吗",
    "休息日加班工资怎么算",
    "哪里可以学习充电提升技能",
    "附近的菜鸟驿站在哪",
    "12351是什么电话？",
    "外卖小哥能入工会吗",
    "小榄镇在哪",
    "今天天气怎么样",
    "主播好漂亮",
    "",
    "How do I apply for legal aid?",
    "what is the 12351 hotline",
]


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return load_gazetteer()


@pytest.fixture(scope="module")
def desk(gazetteer: Gazetteer) -> SiteDesk:
    return SiteDesk(SITES, gazetteer, CITY)


@pytest.mark.parametrize(("question", "now", "ids", "said"), CASES, ids=[c[0] for c in CASES])
def test_site_questions_name_the_right_sites_and_say_them(
    desk: SiteDesk, question: str, now: datetime, ids: list[str], said: list[str]
) -> None:
    reply = desk.reply(question, now)
    assert reply is not None, question
    assert [match.site.id for match in reply.matches] == ids
    spoken = "".join(reply.sentences) if reply.query.language == "zh" else " ".join(reply.sentences)
    for words in said:
        assert words in spoken, f"{words!r} not in {reply.sentences}"
    assert all(_short(sentence) for sentence in reply.sentences), reply.sentences
    assert not reply.sample  # the fixture sites are not sample data
    for match in reply.matches:  # every site named says whether it is open, as the finder read it
        assert match.open_now == is_open(match.site.hours, now)


def test_at_least_thirty_site_questions_of_every_form() -> None:
    assert len(CASES) >= 30
    assert sum(1 for case in CASES if case[0].isascii()) >= 5


@pytest.mark.parametrize("question", NOT_SITE)
def test_other_questions_are_left_to_the_knowledge_base(desk: SiteDesk, question: str) -> None:
    assert desk.reply(question, WED) is None


@pytest.mark.parametrize(
    ("procedure", "site"),
    [
        ("法律援助怎么申请", "法律援助站在哪"),
        ("法律援助有什么条件", "附近有没有法律援助站"),
        ("法律援助在哪里申请", "法律援助站几点开门"),
        ("驿站提供什么服务", "驿站在哪"),
        ("驿站收费吗", "石岐的驿站在哪"),
        ("书屋能借书吗", "附近有书屋能借书吗"),
        ("劳动合同纠纷去哪里找法律援助", "劳动合同纠纷，附近有没有法律援助站"),
        ("律师费谁出", "兴中道附近哪里有律师咨询"),
    ],
)
def test_a_procedure_is_not_a_site_question_but_where_and_when_are(
    gazetteer: Gazetteer, procedure: str, site: str
) -> None:
    assert read_site_question(procedure, gazetteer) is None
    assert read_site_question(site, gazetteer) is not None


def test_kinds_are_read_from_many_words(gazetteer: Gazetteer) -> None:
    expected = {
        "石岐哪里可以吹空调": SiteKind.REST,
        "东区附近能热饭的地方": SiteKind.REST,
        "小榄有没有能给手机充电的地方": SiteKind.REST,
        "石岐职工之家在哪": SiteKind.SERVICE,
        "东区服务中心地址": SiteKind.SERVICE,
        "小榄法援站在哪里": SiteKind.LEGAL,
        "东区附近有没有法律咨询的地方": SiteKind.LEGAL,
        "石岐哪里有图书室": SiteKind.BOOKS,
        "东区附近哪里能看书": SiteKind.BOOKS,
        "any rest stop near Xiaolan?": SiteKind.REST,
        "legal aid office near Shiqi": SiteKind.LEGAL,
    }
    for question, kind in expected.items():
        query = read_site_question(question, gazetteer)
        assert query is not None, question
        assert query.kind is kind, question


def test_the_query_reads_place_nearness_town_and_hours(gazetteer: Gazetteer) -> None:
    query = read_site_question("小榄镇政府旁边的驿站现在开着吗", gazetteer)
    assert query is not None
    assert query.place is not None and query.place.name == "小榄镇政府"  # not the town 小榄镇
    assert (query.nearest, query.in_town, query.open_now) == (True, False, True)
    query = read_site_question("小榄镇有几个书屋", gazetteer)
    assert query is not None and query.place is not None
    assert (query.place.name, query.in_town, query.nearest) == ("小榄镇", True, False)
    query = read_site_question(
        "where is the nearest rest station near Zhongshan station?", gazetteer
    )
    assert query == SiteQuery(
        kind=SiteKind.REST,
        place=gazetteer.find("中山站")[0],
        nearest=True,
        language="en",
    )


def test_a_question_is_cut_and_never_echoed(desk: SiteDesk, gazetteer: Gazetteer) -> None:
    padding = "啊" * MAX_QUESTION_CHARS
    assert read_site_question(padding + "小榄镇有没有驿站", gazetteer) is None  # beyond the cut
    reply = desk.reply("我叫张三，电话13912345678，住址保密，小榄镇有没有驿站？<script>", WED)
    assert reply is not None
    spoken = "".join(reply.sentences)
    for raw in ("张三", "13912345678", "一三九", "住址", "<script>"):
        assert raw not in spoken


def test_a_naive_or_utc_time_is_read_on_the_sites_clock(desk: SiteDesk) -> None:
    question = "中山站附近的驿站现在开门吗"
    local = desk.reply(question, WED)
    utc = desk.reply(question, WED.astimezone(UTC))
    naive = desk.reply(question, WED.replace(tzinfo=None))
    assert local is not None and utc is not None and naive is not None
    assert local.sentences == utc.sentences == naive.sentences
    early = desk.reply(question, WED - timedelta(hours=2, minutes=30))  # 08:00, 站前 is open
    assert early is not None
    assert early.matches[0].site.id == "r-zsg-2" and early.matches[0].open_now is True


def test_open_now_prefers_open_sites_after_the_nearest(gazetteer: Gazetteer) -> None:
    finder = SiteFinder(SITES, CITY, gazetteer=gazetteer)
    place = gazetteer.find("中山站")[0]
    query = SiteQuery(kind=SiteKind.REST, place=place, nearest=True, open_now=True)
    # 07:00 on a Wednesday: the station's own one (06:00-10:00), 张家边 (24/7) and 岐江公园
    # (from 07:00) are open; 濠头 (from 08:00), nearer than the last two, is not yet.
    early = finder.find(query, datetime(2025, 3, 5, 7, 0, tzinfo=CITY))
    assert [(m.site.id, m.open_now) for m in early] == [
        ("r-zsg-2", True),
        ("r-zsg-1", True),
        ("r-sq-2", True),
    ]
    # 03:00: only the 24/7 ones are open; the nearest (closed) is still named first.
    night = finder.find(query, datetime(2025, 3, 5, 3, 0, tzinfo=CITY))
    assert [(m.site.id, m.open_now) for m in night] == [
        ("r-zsg-2", False),
        ("r-zsg-1", True),
        ("r-sq-1", True),
    ]


def test_distances_are_great_circle_kilometres(gazetteer: Gazetteer) -> None:
    finder = SiteFinder(SITES, CITY)
    memorial = gazetteer.find("中山纪念堂")[0]
    distances = finder.distances_km(memorial.lon, memorial.lat)
    for site, distance in zip(SITES, distances, strict=True):
        assert distance == pytest.approx(_haversine(memorial, site), rel=1e-9, abs=1e-9)
    # One degree of latitude is about 111.2 km anywhere.
    one_degree = SiteFinder([SITES[0]], CITY).distances_km(SITES[0].lon, SITES[0].lat + 1)[0]
    assert one_degree == pytest.approx(111.2, abs=0.1)


def test_without_a_place_a_kind_with_few_sites_is_named_in_full(gazetteer: Gazetteer) -> None:
    legal = [site for site in SITES if site.kind is SiteKind.LEGAL][:2]
    desk = SiteDesk(legal, gazetteer, CITY)
    reply = desk.reply("法律援助站几点开门？", WED)
    assert reply is not None
    assert [match.site.id for match in reply.matches] == ["l-dq-1", "l-xl-1"]
    assert reply.sentences[0] == "全市共有两个法律援助站。"
    assert all(match.distance_km is None for match in reply.matches)
    assert "约" not in reply.sentences[1]


def test_an_empty_kind_says_so_and_gives_the_hotline(gazetteer: Gazetteer) -> None:
    desk = SiteDesk([site for site in SITES if site.kind is not SiteKind.BOOKS], gazetteer, CITY)
    reply = desk.reply("小榄镇有书屋吗", WED)
    assert reply is not None and reply.matches == ()
    assert reply.sentences == ("暂时没有找到职工书屋。", "可以拨打工会服务热线一二三五一咨询。")


def test_sample_sites_are_announced_first(gazetteer: Gazetteer) -> None:
    from dataclasses import replace

    demo = [replace(site, sample=True) if site.id == "r-sq-1" else site for site in SITES]
    reply = SiteDesk(demo, gazetteer, CITY).reply("石岐附近的驿站", WED)
    assert reply is not None and reply.sample
    assert reply.sentences[0] == SAMPLE_NOTICE
    english = SiteDesk(demo, gazetteer, CITY).reply("rest station near Shiqi?", WED)
    assert english is not None
    assert english.sentences[0] == "These are demo sample sites, not real addresses."
    plain = SiteDesk(demo, gazetteer, CITY).reply("小榄附近的驿站", WED)
    assert plain is not None and not plain.sample and SAMPLE_NOTICE not in plain.sentences


def test_phone_numbers_are_read_digit_by_digit_in_groups() -> None:
    assert speak_phone("0760-88881234") == "零七六零，八八八八，一二三四"
    assert speak_phone("076088881234") == "零七六零，八八八八，一二三四"
    assert speak_phone("13800001234") == "一三八，零零零零，一二三四"
    assert speak_phone("12351") == "一二三五一"
    assert speak_phone("8888123") == "八八八，八一二三"
    assert speak_phone("400-123-4567") == "四零零，一二三，四五六七"
    assert speak_phone("0760-88881234", english=True) == (
        "zero seven six zero, eight eight eight eight, one two three four"
    )


def test_opening_hours_are_said_as_people_say_them() -> None:
    assert speak_hours_zh("Mo-Fr 09:00-17:30") == "周一至周五上午九点到下午五点半"
    assert speak_hours_zh("07:00-22:00") == "每天早上七点到晚上十点"
    assert speak_hours_zh("24/7") == "全天二十四小时"
    assert speak_hours_zh("Mo-Fr 08:30-12:00,14:30-17:30") == (
        "周一至周五早上八点半到中午十二点、下午两点半到五点半"
    )
    assert speak_hours_zh("Mo-Fr 09:00-12:00,14:00-17:30; PH closed") == (
        "周一至周五上午九点到中午十二点、下午两点到五点半，节假日休息"
    )
    assert (
        speak_hours_zh("Mo,We,Fr 08:15-12:05") == "周一、周三、周五早上八点十五分到中午十二点零五分"
    )
    assert speak_hours_zh("Sa,Su 09:00-17:00") == "周末上午九点到下午五点"
    assert speak_hours_zh('Mo-Fr 09:00-17:30 "by appointment"') is None
    assert speak_hours_en("Tu-Su 09:00-21:00") == "Tuesday to Sunday, 9 am to 9 pm"
    assert speak_hours_en("Mo-Fr 09:00-12:00,14:00-17:30; PH closed") == (
        "Monday to Friday, 9 am to noon and 2 pm to 5:30 pm; closed on public holidays"
    )


def test_hours_that_cannot_be_said_are_not_read_out(gazetteer: Gazetteer) -> None:
    from dataclasses import replace

    odd = replace(SITES[0], hours='Mo-Fr 09:00-17:30 "by appointment"', phone=None)
    query = SiteQuery(kind=SiteKind.REST, place=gazetteer.find("石岐")[0], nearest=True)
    reply = compose_reply(query, SiteFinder([odd], CITY).find(query, WED), WED)
    spoken = "".join(reply.sentences)
    assert "appointment" not in spoken and "Mo-Fr" not in spoken


# ── The gazetteer ────────────────────────────────────────────────────────────────────────


def test_the_gazetteer_lists_the_citys_23_towns_and_their_short_names(gazetteer: Gazetteer) -> None:
    assert len(gazetteer.towns) == 23
    for said, town in {
        "石岐": "石岐街道",
        "小榄": "小榄镇",
        "火炬开发区": "中山港街道",
        "火炬区": "中山港街道",
        "中山港": "中山港街道",
        "东区": "东区街道",
        "古镇": "古镇镇",
        "Xiaolan": "小榄镇",
        "SHIQI": "石岐街道",
        "Tanzhou": "坦洲镇",
    }.items():
        assert [place.name for place in gazetteer.find(f"我在{said}附近")] == [town], said
    assert gazetteer.town_key("石岐区") == gazetteer.town_key("石岐") == "石岐街道"


def test_the_gazetteer_takes_the_longest_names_without_overlap(gazetteer: Gazetteer) -> None:
    assert [p.name for p in gazetteer.find("中山港客运码头到中山站")] == [
        "中山港客运码头",
        "中山站",
    ]
    assert [p.name for p in gazetteer.find("小榄镇政府和古镇")] == ["小榄镇政府", "古镇镇"]
    assert [p.name for p in gazetteer.find("Zhongshan North Station")] == ["中山北站"]
    assert gazetteer.find("nantoujie") == []  # a Latin name stands as a whole word
    assert all(p.kind in ("town", "street", "landmark") for p in gazetteer.places)
    assert all(p.town in {t.name for t in gazetteer.towns} for p in gazetteer.places)


def test_an_extra_gazetteer_extends_and_overrides(tmp_path: Path) -> None:
    extra = tmp_path / "ours.csv"
    extra.write_text(
        "# our own places\n"
        "name,kind,town,lon,lat,aliases\n"
        "中山站,landmark,中山港街道,113.4500,22.5600,城轨中山站\n"
        "小榄菊城广场,landmark,小榄,113.2480,22.6650,菊城广场|Jucheng Square\n",
        encoding="utf-8",
    )
    gazetteer = load_gazetteer(extra)
    station = gazetteer.find("中山站")[0]
    assert (station.lon, station.lat) == (113.45, 22.56)
    square = gazetteer.find("jucheng square")[0]
    assert (square.name, square.town) == ("小榄菊城广场", "小榄镇")


def test_a_broken_gazetteer_names_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text(
        "# comment\n"
        "name,kind,town,lon,lat,aliases\n"
        "甲广场,landmark,石岐街道,abc,22.5,\n"
        "乙广场,plaza,石岐街道,113.3,22.5,\n"
        "丙广场,landmark,石岐街道,22.5,113.3,\n"
        "丁广场,landmark,石岐街道,113.3,22.5,丁\n"
        "戊广场,landmark,石岐街道,113.3,22.5,甲广场\n"
        "甲广场,landmark,石岐街道,113.3,22.5,\n",
        encoding="utf-8",
    )
    with pytest.raises(SourceError) as caught:
        read_places(broken)
    errors = caught.value.errors
    assert errors[0].startswith(f"{broken}:3: lon: expected a number")
    assert errors[1].startswith(f"{broken}:4: kind: expected one of")
    assert errors[2].startswith(f"{broken}:5:") and "swapped" in errors[2]
    assert errors[3].startswith(f"{broken}:6:") and "too short" in errors[3]
    assert errors[4].startswith(f"{broken}:8:") and "already names 戊广场" in errors[4]
    missing_town = tmp_path / "town.csv"
    missing_town.write_text("name,kind,town,lon,lat,aliases\n己广场,landmark,火星镇,113.3,22.5,\n")
    with pytest.raises(SourceError, match="火星镇"):
        load_gazetteer(missing_town)
    with pytest.raises(SourceError, match="file not found"):
        load_gazetteer(tmp_path / "absent.csv")


# ── The shipped sample dataset, checked against a brute-force search ──────────────────────


def _short(sentence: str) -> bool:
    """A breath: at most 60 characters of Chinese; English sentences may run longer."""
    return len(sentence) <= (100 if sentence[:1].isascii() else MAX_SENTENCE_CHARS)


def _haversine(a: Place | Site, b: Site) -> float:
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlon = lat2 - lat1, math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def _expected(sites: list[Site], query: SiteQuery, now: datetime) -> list[str]:
    """What the finder should name, by plain Python over every site."""
    assert query.place is not None
    place = query.place
    pool = [s for s in sites if query.kind is None or s.kind is query.kind]
    if query.in_town:
        pool = [s for s in pool if s.town == place.town] or pool
    ranked = sorted(pool, key=lambda s: (_haversine(place, s), sites.index(s)))
    if query.in_town and not any(s.town == place.town for s in ranked):
        ranked = ranked[:1]
    if not query.open_now:
        return [s.id for s in ranked[:3]]
    opened = [s for s in ranked if is_open(s.hours, now)][:3]
    if not opened or ranked[0] in opened:
        return [s.id for s in (opened or ranked)[:3]]
    return [ranked[0].id] + [s.id for s in opened[:2]]


# Questions against the shipped sample: what the host must read from each (kind, place,
# whether it is about one town), and then the sites a plain search over all 620 would name.
SAMPLE_QUESTIONS = [
    ("离中山站最近的驿站在哪？", WED, R, "中山站", False),
    ("小榄镇有没有职工服务站？", WED, S, "小榄镇", True),
    ("石岐附近能喝水歇脚的地方", WED, R, "石岐街道", False),
    ("where is the nearest rest station near Zhongshan station?", WED, R, "中山站", False),
    ("古镇有法律援助站吗", WED, L, "古镇镇", True),
    ("坦洲镇的书屋现在开着吗", SUN, B, "坦洲镇", True),
    ("兴中广场附近现在开着的法律援助站", NIGHT, L, "兴中广场", False),
    ("孙中山故居附近有没有职工书屋", WED, B, "孙中山故居", False),
    ("Is there a library in Xiaolan?", WED, B, "小榄镇", True),
    ("火炬区哪里能热饭", NIGHT, R, "中山港街道", False),
    ("三乡镇有几个驿站", WED, R, "三乡镇", True),
    ("南朗哪里有职工服务站", WED, S, "南朗街道", True),
    ("沙溪镇有没有法援站", WED, L, "沙溪镇", True),
    ("大涌附近的书屋", SUN, B, "大涌镇", False),
    ("岐江公园旁边有驿站吗", WED, R, "岐江公园", False),
    ("中山北站附近哪里可以充电休息", NIGHT, R, "中山北站", False),
    ("紫马岭公园附近的职工服务站在哪", WED, S, "紫马岭公园", False),
    ("中山纪念堂附近有法律援助站吗", WED, L, "中山纪念堂", False),
    ("利和广场附近现在有开着的书屋吗", NIGHT, B, "利和广场", False),
    ("东凤镇的驿站电话多少", WED, R, "东凤镇", True),
    ("黄圃有没有户外劳动者驿站", SUN, R, "黄圃镇", True),
    ("港口镇的职工服务中心几点开门", SUN, S, "港口镇", True),
    ("民众街道有法律援助工作站吗", WED, L, "民众街道", True),
    ("神湾镇有书屋没", WED, B, "神湾镇", True),
    ("板芙附近最近的驿站", NIGHT, R, "板芙镇", False),
    ("横栏镇哪里有职工服务站", WED, S, "横栏镇", True),
    ("阜沙附近的法律援助站几点关门", NIGHT, L, "阜沙镇", False),
    ("三角镇有职工书屋吗", WED, B, "三角镇", True),
    ("五桂山那边有歇脚喝水的地方吗", WED, R, "五桂山街道", False),
    ("南头镇的职工服务站", WED, S, "南头镇", True),
    ("nearest legal aid station to Xiaolan", WED, L, "小榄镇", False),
    ("古镇灯饰城附近有驿站吗", WED, R, "古镇灯饰城", False),
    ("中山市人民医院旁边的职工服务站", WED, S, "中山市人民医院", False),
    ("西区有书屋吗 想看书", SUN, B, "西区街道", True),
]


@pytest.mark.parametrize(("question", "now", "kind", "place", "in_town"), SAMPLE_QUESTIONS)
def test_the_shipped_sample_answers_like_a_brute_force_search(
    gazetteer: Gazetteer,
    question: str,
    now: datetime,
    kind: SiteKind,
    place: str,
    in_town: bool,
) -> None:
    sites = list(load_sites(SAMPLE).sites)
    assert len(sites) >= 600
    reply = SiteDesk(sites, gazetteer, CITY).reply(question, now)
    assert reply is not None, question
    assert reply.query.kind is kind, reply.query
    assert reply.query.place is not None and reply.query.place.name == place, reply.query
    if in_town:  # "X有没有…": the sites of that town (a town with none: the nearest elsewhere)
        assert reply.query.in_town
    assert reply.matches, reply.sentences
    assert [m.site.id for m in reply.matches] == _expected(sites, reply.query, now)
    assert reply.sample and reply.sentences[0] in (
        SAMPLE_NOTICE,
        "These are demo sample sites, not real addresses.",
    )
    assert all(_short(sentence) for sentence in reply.sentences), reply.sentences
    if reply.query.language == "zh":
        spoken = "".join(reply.sentences)
        assert ("现在开着" in spoken) or ("现在没开门" in spoken)
        assert "0760" not in spoken  # phone numbers are read digit by digit
        if reply.matches[0].site.phone:  # the nearest is told in full, the others briefly
            assert "电话：零七六零" in spoken


def test_the_sample_questions_cover_every_kind() -> None:
    assert len(SAMPLE_QUESTIONS) >= 30
    assert {kind for _, _, kind, _, _ in SAMPLE_QUESTIONS} == set(SiteKind)
