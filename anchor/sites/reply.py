"""What the host says about the sites found: short spoken sentences, Chinese or English.

Everything is written to be heard, not read: "约1.2公里", hours as "上午九点到下午五点半"
rather than "09:00-17:30" (a voice reads the latter as a ratio or a date), and a phone
number digit by digit in groups with pauses ("零七六零，八八八八，一二三四"), the way people
read a number they expect you to dial. Every sentence stays under about 60 characters, the
length a caption line and a breath can carry.

When any site named is the shipped sample data, the first sentence says so plainly: a
viewer must never walk to a demo address.

Nothing of the viewer's question is repeated; places come from the gazetteer and sites from
the operator's dataset.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from anchor.sites.gazetteer import english_name
from anchor.sites.model import Place, SiteKind, SiteMatch, SiteQuery, SiteReply

MAX_SENTENCE_CHARS = 60
SAMPLE_NOTICE = "以下是演示用的示例站点，不是真实地址。"
SAMPLE_NOTICE_EN = "These are demo sample sites, not real addresses."

_ZH_DIGITS = "零一二三四五六七八九"
_EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_ZH_ORDINALS = ("第一个", "第二个", "第三个", "第四个", "第五个")
_EN_ORDINALS = ("First", "Second", "Third", "Fourth", "Fifth")
_KIND_EN = {
    SiteKind.SERVICE: ("workers' service station", "workers' service stations"),
    SiteKind.REST: ("outdoor workers' rest station", "outdoor workers' rest stations"),
    SiteKind.LEGAL: ("legal aid station", "legal aid stations"),
    SiteKind.BOOKS: ("workers' library", "workers' libraries"),
}
_ANY_KIND_ZH = "服务站点"
_ANY_KIND_EN = ("union service site", "union service sites")

_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_DAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_DAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY = "(?:Mo|Tu|We|Th|Fr|Sa|Su|PH)"
_SELECTOR = re.compile(rf"{_DAY}(?:-{_DAY})?(?:,{_DAY}(?:-{_DAY})?)*")
_SPAN = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")
_RULE = re.compile(
    rf"(?:({_SELECTOR.pattern})\s+)?(off|closed|{_SPAN.pattern}(?:,{_SPAN.pattern})*)"
)


def compose_reply(
    query: SiteQuery,
    matches: Sequence[SiteMatch],
    now: datetime,
    *,
    total: int | None = None,
) -> SiteReply:
    """The host's answer. `total`: how many sites of the kind the town (or the city, with no
    town) has, for "小榄镇有几个驿站"; `now` is when the open states were read."""
    del now  # the open states in `matches` were read at `now`; nothing else depends on it
    english = query.language == "en"
    sample = any(match.site.sample for match in matches)
    sentences: list[str] = []
    if sample:
        sentences.append(SAMPLE_NOTICE_EN if english else SAMPLE_NOTICE)
    speak = _English() if english else _Chinese()
    if not matches:
        sentences.extend(speak.nothing(query, total))
    else:
        sentences.extend(speak.opening(query, matches, total))
        several = len(matches) > 1
        nearest_closed = query.open_now and matches[0].open_now is not True
        detailed = False  # address, hours and phone for one site only: the answer stays short
        for number, match in enumerate(matches):
            if number == 1 and nearest_closed and match.open_now is True:
                sentences.append(speak.open_ones_follow())
            first_closed = matches[0].open_now is False
            full = number == 0 or (first_closed and match.open_now is True and not detailed)
            if full and match.open_now is True:
                detailed = True
            if full:
                sentences.extend(speak.site(match, number if several else None))
            else:
                sentences.append(speak.brief(match, number))
    return SiteReply(
        sentences=tuple(_fit(sentences)),
        query=query,
        matches=tuple(matches),
        sample=sample,
    )


class _Chinese:
    def nothing(self, query: SiteQuery, total: int | None) -> list[str]:
        kind = _kind_zh(query.kind)
        if query.place is None:
            if total == 0:
                return [f"暂时还没有收录{kind}的信息。", "可以拨打工会服务热线一二三五一咨询。"]
            return [
                "您在哪个镇街？",
                f"告诉我镇街或附近的地标，比如小榄镇、中山站，我帮您找最近的{kind}。",
            ]
        return [f"暂时没有找到{kind}。", "可以拨打工会服务热线一二三五一咨询。"]

    def opening(
        self, query: SiteQuery, matches: Sequence[SiteMatch], total: int | None
    ) -> list[str]:
        kind = _kind_zh(query.kind)
        place = query.place
        if place is None:
            count = total if total is not None else len(matches)
            if count == 1:
                return [f"全市只有一个{kind}。"]
            return [f"全市共有{_zh_count(count)}个{kind}。"]
        if query.in_town and matches[0].in_town is False:
            return [f"{place.name}暂时没有{kind}。", f"离那里最近的一个在{matches[0].site.town}："]
        if query.in_town:
            count = total if total is not None else len(matches)
            if count > len(matches):
                which = "其中" if query.open_now else "离中心最近的"
                return [
                    f"{place.name}有{_zh_count(count)}个{kind}，"
                    f"先说{which}{_zh_count(len(matches))}个。"
                ]
            if count == 1:
                return [f"{place.name}有一个{kind}。"]
            return [f"{place.name}有{_zh_count(count)}个{kind}。"]
        if query.open_now and all(match.open_now is False for match in matches):
            return [f"{_near_zh(place)}的{kind}现在都没开门，开放时间如下。"]
        if query.open_now and all(match.open_now is True for match in matches):
            return [f"{_near_zh(place)}、现在开着的{kind}："]
        return [f"{_near_zh(place)}的{kind}："]

    def open_ones_follow(self) -> str:
        return "现在开着的有："

    def site(self, match: SiteMatch, number: int | None) -> list[str]:
        site = match.site
        lead = f"{_ZH_ORDINALS[number]}，" if number is not None and number < 5 else ""
        distance = f"，{_distance_zh(match.distance_km)}" if match.distance_km is not None else ""
        sentences = [f"{lead}{site.name}{distance}。", f"地址：{site.address}。"]
        hours = speak_hours_zh(site.hours)
        state = {True: "现在开着", False: "现在没开门", None: ""}[match.open_now]
        if hours is None:
            if state:
                sentences.append(f"{state}。")
            elif site.phone is None:
                sentences.append("开放时间以现场公告为准。")
        elif state and len(state) + len(hours) + 7 <= MAX_SENTENCE_CHARS:
            sentences.append(f"{state}，开放时间是{hours}。")
        else:
            if state:
                sentences.append(f"{state}。")
            sentences.append(f"开放时间是{hours}。")
        if site.phone:
            sentences.append(f"电话：{speak_phone(site.phone)}。")
        return sentences

    def brief(self, match: SiteMatch, number: int) -> str:
        lead = f"{_ZH_ORDINALS[number]}，" if number < 5 else ""
        distance = f"，{_distance_zh(match.distance_km)}" if match.distance_km is not None else ""
        state = {True: "，现在开着", False: "，现在没开门", None: ""}[match.open_now]
        return f"{lead}{match.site.name}{distance}{state}。"


class _English:
    def nothing(self, query: SiteQuery, total: int | None) -> list[str]:
        kinds = _kind_en(query.kind)[1]
        if query.place is None and total != 0:
            return [
                "Which town or district are you in?",
                f"Tell me a town or a landmark, like Xiaolan or Zhongshan Station, "
                f"and I'll find the nearest {kinds}.",
            ]
        return [
            f"I couldn't find any {kinds} yet.",
            "Please call the union hotline, one two three five one.",
        ]

    def opening(
        self, query: SiteQuery, matches: Sequence[SiteMatch], total: int | None
    ) -> list[str]:
        one, many = _kind_en(query.kind)
        place = query.place
        if place is None:
            count = total if total is not None else len(matches)
            if count == 1:
                return [f"There is one {one} in the city."]
            return [f"There are {_count_en(count)} {many} in the city."]
        name = english_name(place)
        if query.in_town and matches[0].in_town is False:
            return [f"There is no {one} in {name}; the nearest one is in {matches[0].site.town}:"]
        if query.in_town:
            count = total if total is not None else len(matches)
            noun = one if count == 1 else many
            if count > len(matches):
                return [
                    f"{name} has {_count_en(count)} {noun}; "
                    f"the {_count_en(len(matches))} nearest its centre:"
                ]
            return [f"{name} has {_count_en(count)} {noun}:"]
        if query.open_now and all(match.open_now is False for match in matches):
            return [f"The nearest {many} to {name} are all closed now; their hours:"]
        return [f"The nearest {many if len(matches) > 1 else one} to {name}:"]

    def open_ones_follow(self) -> str:
        return "Open now:"

    def site(self, match: SiteMatch, number: int | None) -> list[str]:
        site = match.site
        lead = f"{_EN_ORDINALS[number]}: " if number is not None and number < 5 else ""
        distance = (
            f", {_distance_en(match.distance_km)} away" if match.distance_km is not None else ""
        )
        sentences = [f"{lead}{site.name}{distance}.", f"Address: {site.address}."]
        state = {True: "Open now.", False: "Closed now.", None: ""}[match.open_now]
        hours = speak_hours_en(site.hours)
        if state:
            sentences.append(state)
        if hours is not None:
            sentences.append(f"Hours: {hours}.")
        if site.phone:
            sentences.append(f"Phone: {speak_phone(site.phone, english=True)}.")
        return sentences

    def brief(self, match: SiteMatch, number: int) -> str:
        lead = f"{_EN_ORDINALS[number]}: " if number < 5 else ""
        distance = (
            f", {_distance_en(match.distance_km)} away" if match.distance_km is not None else ""
        )
        state = {True: ", open now", False: ", closed now", None: ""}[match.open_now]
        return f"{lead}{match.site.name}{distance}{state}."


def speak_phone(phone: str, *, english: bool = False) -> str:
    """Digits one by one, in the groups a person reads them: 0760-88881234 → 零七六零，
    八八八八，一二三四; a mobile 13800001234 → 一三八，零零零零，一二三四."""
    groups: list[str] = []
    for part in re.findall(r"\d+", phone):
        groups.extend(_phone_groups(part))
    if english:
        return ", ".join(" ".join(_EN_DIGITS[int(d)] for d in group) for group in groups)
    return "，".join("".join(_ZH_DIGITS[int(d)] for d in group) for group in groups)


def _phone_groups(digits: str) -> list[str]:
    """A mobile as 3-4-4; a hotline (12351) whole; otherwise fours, a shorter group first
    (8888123 → 888, 8123; 4001234567 → 400, 123, 4567)."""
    n = len(digits)
    if n == 11 and digits.startswith("1"):
        return [digits[:3], digits[3:7], digits[7:]]
    if n <= 5:
        return [digits]
    heads = {0: [4], 1: [5], 2: [3, 3], 3: [3]}[n % 4]
    groups: list[str] = []
    position = 0
    for size in heads:
        groups.append(digits[position : position + size])
        position += size
    groups.extend(digits[i : i + 4] for i in range(position, n, 4))
    return groups


def speak_hours_zh(hours: str) -> str | None:
    """OSM opening hours as spoken Chinese ("Mo-Fr 09:00-17:30" → "周一至周五，上午九点到下午
    五点半"), or None for a form this does not know how to say."""
    if hours.strip() == "24/7":
        return "全天二十四小时"
    rules = _rules(hours)
    if rules is None:
        return None
    phrases: list[str] = []
    for days, spans in rules:
        when = _days_zh(days)
        if spans is None:
            phrases.append(f"{when}休息")
        else:
            phrases.append(f"{when}{'、'.join(_span_zh(*span) for span in spans)}")
    return "，".join(phrases)


def speak_hours_en(hours: str) -> str | None:
    if hours.strip() == "24/7":
        return "24 hours a day, every day"
    rules = _rules(hours)
    if rules is None:
        return None
    phrases: list[str] = []
    for days, spans in rules:
        when = _days_en(days)
        if spans is None:
            phrases.append(f"closed on {when}")
        else:
            phrases.append(f"{when}, {' and '.join(_span_en(*span) for span in spans)}")
    return "; ".join(phrases)


_Span = tuple[int, int, int, int]
_Rules = list[tuple[list[str], list[_Span] | None]]


def _rules(hours: str) -> _Rules | None:
    """The rules of the OSM forms the dataset produces: "; "-separated rules of an optional
    day selector and time spans (or off/closed). Anything else: None."""
    rules: _Rules = []
    for part in hours.strip().split(";"):
        match = _RULE.fullmatch(part.strip())
        if match is None:
            return None
        selector = match.group(1)
        days = selector.split(",") if selector else []
        body = match.group(2)
        if body in ("off", "closed"):
            rules.append((days, None))
            continue
        spans = [(int(a), int(b), int(c), int(d)) for a, b, c, d in _SPAN.findall(body)]
        rules.append((days, spans))
    return rules


def _days_zh(days: list[str]) -> str:
    if not days:
        return "每天"
    if days == ["Sa", "Su"]:
        return "周末"
    words: list[str] = []
    for item in days:
        if item == "PH":
            words.append("节假日")
        elif item == "Mo-Su":
            words.append("每天")
        elif item == "Sa-Su":
            words.append("周末")
        elif "-" in item:
            first, last = item.split("-")
            words.append(f"{_day_zh(first)}至{_day_zh(last)}")
        else:
            words.append(_day_zh(item))
    return "、".join(words)


def _day_zh(code: str) -> str:
    return "节假日" if code == "PH" else _DAYS_ZH[_DAYS.index(code)]


def _days_en(days: list[str]) -> str:
    if not days:
        return "every day"
    if days == ["Sa", "Su"]:
        return "weekends"
    words: list[str] = []
    for item in days:
        if item == "Mo-Su":
            words.append("every day")
        elif item == "Sa-Su":
            words.append("weekends")
        elif "-" in item:
            first, last = item.split("-")
            words.append(f"{_day_en(first)} to {_day_en(last)}")
        else:
            words.append(_day_en(item))
    return ", ".join(words)


def _day_en(code: str) -> str:
    return "public holidays" if code == "PH" else _DAYS_EN[_DAYS.index(code)]


def _span_zh(h1: int, m1: int, h2: int, m2: int) -> str:
    """A span as said aloud; the period is not repeated: 下午两点到五点半."""
    if (h1, m1, h2, m2) == (0, 0, 24, 0):
        return "全天开放"
    period1, time1 = _clock_zh(h1, m1)
    period2, time2 = _clock_zh(h2, m2)
    return f"{period1}{time1}到{'' if period2 == period1 else period2}{time2}"


def _clock_zh(hour: int, minute: int) -> tuple[str, str]:
    """The time as said aloud, period and clock: 9:00 → 上午, 九点; 17:30 → 下午, 五点半."""
    if hour in (0, 24):
        period, shown = "晚上" if hour == 24 else "凌晨", 12 if hour == 24 else 0
    elif hour < 5:
        period, shown = "凌晨", hour
    elif hour < 9:
        period, shown = "早上", hour
    elif hour < 12:
        period, shown = "上午", hour
    elif hour < 13:
        period, shown = "中午", hour
    elif hour < 18:
        period, shown = "下午", hour - 12
    else:
        period, shown = "晚上", hour - 12
    spoken = "两" if shown == 2 else _zh_number(shown)
    if minute == 0:
        return period, f"{spoken}点"
    if minute == 30:
        return period, f"{spoken}点半"
    tail = f"零{_zh_number(minute)}" if minute < 10 else _zh_number(minute)
    return period, f"{spoken}点{tail}分"


def _span_en(h1: int, m1: int, h2: int, m2: int) -> str:
    if (h1, m1, h2, m2) == (0, 0, 24, 0):
        return "all day"
    return f"{_clock_en(h1, m1)} to {_clock_en(h2, m2)}"


def _clock_en(hour: int, minute: int) -> str:
    if hour in (0, 24):
        return "midnight" if minute == 0 else f"12:{minute:02d} am"
    if (hour, minute) == (12, 0):
        return "noon"
    suffix = "am" if hour < 12 else "pm"
    shown = hour if hour <= 12 else hour - 12
    return f"{shown} {suffix}" if minute == 0 else f"{shown}:{minute:02d} {suffix}"


def _zh_number(n: int) -> str:
    """0–99 as said in Chinese: 十, 十五, 二十, 四十五."""
    if n < 10:
        return _ZH_DIGITS[n]
    tens, ones = divmod(n, 10)
    head = "十" if tens == 1 else f"{_ZH_DIGITS[tens]}十"
    return head + (_ZH_DIGITS[ones] if ones else "")


def _zh_count(n: int) -> str:
    """A count before 个: 两个, not 二个; large counts in digits, which voices read well."""
    if n == 2:
        return "两"
    return _zh_number(n) if n < 100 else str(n)


def _distance_zh(km: float) -> str:
    """ "约1.2公里", "约300米", "不到一百米": rounded as a person would say it."""
    if km < 0.1:
        return "不到一百米"
    if km < 0.95:
        return f"约{round(km * 10) * 100}米"
    if km < 9.95:
        return "约" + f"{km:.1f}".removesuffix(".0") + "公里"
    return f"约{round(km)}公里"


def _distance_en(km: float) -> str:
    if km < 0.1:
        return "less than 100 metres"
    if km < 0.95:
        return f"about {round(km * 10) * 100} metres"
    if km < 9.95:
        return "about " + f"{km:.1f}".removesuffix(".0") + " kilometres"
    return f"about {round(km)} kilometres"


def _near_zh(place: Place) -> str:
    """ "石岐街道附近" for a town (its centre is no address), "离中山站最近" for a landmark."""
    return f"{place.name}附近" if place.kind == "town" else f"离{place.name}最近"


def _count_en(n: int) -> str:
    return _EN_DIGITS[n] if 0 < n < 10 else str(n)


def _kind_zh(kind: SiteKind | None) -> str:
    return kind.chinese if kind is not None else _ANY_KIND_ZH


def _kind_en(kind: SiteKind | None) -> tuple[str, str]:
    return _KIND_EN[kind] if kind is not None else _ANY_KIND_EN


def _fit(sentences: list[str]) -> list[str]:
    """Sentences longer than a breath cut at their last comma before the limit."""
    fitted: list[str] = []
    for sentence in sentences:
        while len(sentence) > MAX_SENTENCE_CHARS and _is_chinese(sentence):
            cut = max(
                sentence.rfind("，", 0, MAX_SENTENCE_CHARS),
                sentence.rfind("、", 0, MAX_SENTENCE_CHARS),
            )
            if cut <= 0:
                break
            fitted.append(sentence[:cut] + "。")
            sentence = sentence[cut + 1 :]
        fitted.append(sentence)
    return fitted


def _is_chinese(text: str) -> bool:
    return re.search("[\u4e00-\u9fff]", text) is not None
