"""Telling a question about finding a site from a question the knowledge base should answer.

"法律援助站在哪" wants an address; "法律援助怎么申请" wants a procedure, and the knowledge
base has the answer. Both name legal aid, so the topic alone cannot decide. A question is
read as a site question when it names a kind of site (or a need a site meets: 喝水, 歇脚,
看书) *and* asks where, whether there is one, which is nearest or when it opens; a question
that also speaks of a procedure or a benefit (申请, 合同, 工资, 互助保障 ...) stays with the
knowledge base unless it names a site outright and asks where or when.

Words are split in two strengths. A *site* word names the place itself (驿站, 服务站,
法律援助站, 书屋): with any sign of looking for one it is a site question. A *need* word
names what a site offers (喝水, 休息, 律师, 看书), which people also say about other things
("休息日加班", "律师费"); it needs a stronger sign, and a need for a lawyer or legal aid
needs a place, "nearest" or opening hours, because "去哪里找工会的律师" is answered better
by the knowledge base's "call 12351 or go to the union" than by "which town are you in?".

Everything here works on the `normalize`d text (folded, punctuation dropped), with the
places the gazetteer found masked out, so "中山博览中心" never reads as a 服务中心. The
question is cut to `MAX_QUESTION_CHARS` first, and nothing of it is kept: the query holds a
kind, flags and a place from the gazetteer, never the viewer's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from anchor.sites.gazetteer import Gazetteer, normalize
from anchor.sites.model import Place, SiteKind, SiteQuery

MAX_QUESTION_CHARS = 200
_MASK = "\u3000"  # stands where a place name was; never produced by `normalize`


def _words(*words: str) -> re.Pattern[str]:
    """One pattern for several words, the longest tried first."""
    return re.compile("|".join(sorted(words, key=len, reverse=True)))


# (pattern, kind) for words that name a site. "驿站" of a parcel locker (菜鸟驿站) is not ours.
_SITE_WORDS: tuple[tuple[re.Pattern[str], SiteKind], ...] = (
    (
        re.compile(
            "户外劳动者服务站|户外劳动者驿站|户外劳动者|户外工作者|爱心驿站|工会驿站|职工驿站"
            "|(?<!菜鸟)(?<!快递)(?<!兔喜)(?<!妈妈)(?<!包裹)驿站|译站|驿战|易站"
            "|rest stations?|rest stops?|rest areas?|rest points?|outdoor workers? stations?"
        ),
        SiteKind.REST,
    ),
    (
        _words(
            "职工服务站",
            "职工服务中心",
            "工会服务站",
            "服务站",
            "服务中心",
            "职工之家",
            "工会之家",
            "服务驿家",
            "service stations?",
            "service cent(?:er|re)s?",
            "workers? homes?",
            "workers? service",
        ),
        SiteKind.SERVICE,
    ),
    (
        _words(
            "法律援助站",
            "法律援助工作站",
            "法律援助中心",
            "法援站",
            "法援中心",
            "法律服务站",
            "维权站",
            "维权服务站",
            "legal aid stations?",
            "legal aid cent(?:er|re)s?",
            "legal aid offices?",
        ),
        SiteKind.LEGAL,
    ),
    (
        _words(
            "职工书屋",
            "书屋",
            "图书馆",
            "图书室",
            "阅览室",
            "读书室",
            "libraries",
            "library",
            "reading rooms?",
            "book houses?",
            "bookhouses?",
        ),
        SiteKind.BOOKS,
    ),
)
# Words for a need a site meets. "休息日", "调休" and "学习充电" are about something else.
_NEED_WORDS: tuple[tuple[re.Pattern[str], SiteKind], ...] = (
    (
        re.compile(
            "歇脚|歇歇|歇一下|歇一会|歇会|喝水|喝口水|喝点水|饮水|接水|打水|装水|倒水"
            "|(?<!调)(?<!轮)(?<!薪)休息(?!日|天|时间|权|休假)|坐一下|坐一会|坐坐"
            "|(?<!学习)(?<!自己)充电(?!学习|提升|培训)|热饭|热一下饭|加热|微波炉|吹空调|空调"
            "|避暑|乘凉|纳凉|避雨|躲雨|厕所|洗手间|卫生间"
            "|drinking water|water|toilets?|restrooms?|charge my phone|charging|to rest|a rest"
        ),
        SiteKind.REST,
    ),
    (
        _words("法律援助", "法援", "律师", "法律咨询", "法律服务", "lawyers?", "legal aid"),
        SiteKind.LEGAL,
    ),
    (_words("看书", "借书", "读书", "图书", "看报", "books?", "read"), SiteKind.BOOKS),
)
# A site of any kind.
_ANY_SITE = _words(
    "站点", "网点", "服务点", "服务阵地", "阵地", "工会站", "stations?", "sites?", "places?"
)

_LOCATE = _words(
    "在哪",
    "哪里",
    "哪儿",
    "哪有",
    "哪边",
    "何处",
    "地址",
    "位置",
    "地点",
    "怎么走",
    "怎么去",
    "怎么过去",
    "导航",
    "去哪",
    "找个",
    "找一个",
    "找家",
    "推荐",
    "地方",
    "where",
    "address",
    "location",
    "how (?:do|can) i get",
    "find",
)
_EXISTS = _words(
    "有没有",
    "有木有",
    "有冇",
    "有无",
    "有吗",
    "有么",
    "有嘛",
    "有几个",
    "有几家",
    "几个",
    "几家",
    "几处",
    "多少个",
    "多少家",
    "多少间",
    "有哪些",
    "哪些",
    "哪几个",
    "列一下",
    "列出",
    "is there",
    "are there",
    "any",
    "how many",
    "list",
)
_NEAREST = _words(
    "最近",
    "附近",
    "旁边",
    "周边",
    "周围",
    "边上",
    "身边",
    "就近",
    "离我近",
    "近一点",
    "近点",
    "近的",
    "靠近",
    "不远",
    "nearest",
    "near",
    "nearby",
    "close to",
    "closest",
    "around",
)
_HOURS = _words(
    "几点开门",
    "几点关门",
    "几点开",
    "几点关",
    "几点到几点",
    "开到几点",
    "营业到几点",
    "开门",
    "关门",
    "开着",
    "开着吗",
    "开了吗",
    "开没开",
    "还开",
    "开放时间",
    "营业时间",
    "办公时间",
    "服务时间",
    "上班时间",
    "营业",
    "开放",
    "几点",
    "时间",
    "open",
    "opening hours",
    "hours",
    "closed",
    "close",
)
# Procedures and benefits: the knowledge base's questions even when they mention a site.
_TOPICS = _words(
    "申请",
    "办理",
    "流程",
    "手续",
    "材料",
    "条件",
    "资格",
    "合同",
    "工资",
    "加班",
    "社保",
    "工伤",
    "仲裁",
    "互助",
    "保障",
    "理赔",
    "报销",
    "补贴",
    "补偿",
    "赔偿",
    "福利",
    "会费",
    "入会",
    "会员",
    "学习",
    "培训",
    "技能",
    "课程",
    "多少钱",
    "费用",
    "收费",
    "收钱",
    "要钱",
    "花钱",
    "免费",
    "政策",
    "规定",
    "是什么",
    "什么是",
    "做什么",
    "干什么",
    "干嘛",
    "有什么用",
    "提供什么",
    "什么服务",
    "志愿者",
    "怎么加入",
    "apply",
    "application",
    "contract",
    "salary",
    "wage",
    "insurance",
    "policy",
    "what is",
    "free",
    "cost",
)
_LATIN_LETTER = re.compile("[A-Za-z]")
_CJK = re.compile("[\u3400-\u9fff\uf900-\ufaff]")
_PLACE_RANK = {"landmark": 0, "street": 1, "town": 2}


@dataclass(frozen=True, slots=True)
class _Found:
    kind: SiteKind | None
    site_word: bool  # named the site itself, not only a need


def read_site_question(text: str, gazetteer: Gazetteer) -> SiteQuery | None:
    """What a question asks about sites, or None when it is not about finding a site."""
    text = text[:MAX_QUESTION_CHARS]
    normalized = normalize(text)
    spans = gazetteer.spans(normalized)
    masked = _masked(normalized, [(span.start, span.end) for span in spans])
    found = _kind(masked)
    if found is None:
        return None
    locate = _first_word(_LOCATE, masked) is not None
    nearest = _first_word(_NEAREST, masked) is not None
    hours = _first_word(_HOURS, masked) is not None
    exists = _first_word(_EXISTS, masked) is not None
    place = _chosen_place([span.place for span in spans])
    if _first_word(_TOPICS, masked) is not None and not (
        found.site_word and (locate or nearest or hours)
    ):
        return None
    if found.site_word:
        asked = locate or nearest or hours or exists or place is not None
    elif found.kind is SiteKind.LEGAL:
        asked = nearest or hours or place is not None
    else:
        asked = locate or nearest or exists or place is not None
    if not asked:
        return None
    in_town = place is not None and place.kind == "town" and not nearest
    return SiteQuery(
        kind=found.kind,
        place=place,
        in_town=in_town,
        nearest=nearest or (place is not None and not in_town),
        open_now=hours,
        language=question_language(text),
    )


def question_language(text: str) -> str:
    """ "en" for a question written mostly in Latin letters, otherwise "zh"."""
    latin = len(_LATIN_LETTER.findall(text))
    return "en" if latin > 2 * len(_CJK.findall(text)) and latin >= 3 else "zh"


def _kind(masked: str) -> _Found | None:
    """The kind asked about: a site word before a need word, the first named among equals."""
    for table, site_word in ((_SITE_WORDS, True), (_NEED_WORDS, False)):
        hits = [
            (match.start(), kind)
            for pattern, kind in table
            if (match := _first_word(pattern, masked)) is not None
        ]
        if hits:
            return _Found(min(hits, key=lambda hit: hit[0])[1], site_word)
    if _first_word(_ANY_SITE, masked) is not None:
        return _Found(None, True)
    return None


def _first_word(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The first match that is not part of a longer Latin word ("any" is not in "company")."""
    for match in pattern.finditer(text):
        start, end = match.span()
        if not match.group()[:1].isascii():
            return match
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isascii() and before.isalnum()) and not (
            after.isascii() and after.isalnum()
        ):
            return match
    return None


def _chosen_place(places: list[Place]) -> Place | None:
    """The most precise place named: a landmark over a street over a town, first among equals."""
    if not places:
        return None
    return min(places, key=lambda place: _PLACE_RANK.get(place.kind, 3))


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = _MASK * (end - start)
    return "".join(chars)
