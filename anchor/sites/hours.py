"""Opening hours: the ways union staff write them, turned into one syntax the engine can ask.

Staff fill in spreadsheets by hand: ``周一至周五 9:00-17:30``, ``每天 8:00-20:00``, ``24小时``,
``工作日 9:00-12:00，14:00-17:30，周末休息``. The host has to answer "is it open now" for any of
them, so every form is translated once, on import, into OpenStreetMap ``opening_hours`` syntax
(``Mo-Fr 09:00-17:30``), which a maintained library (opening-hours-py) evaluates, public
holidays included. Data already in OSM syntax (exported from OSM or written by a GIS person)
is taken as it is. Anything that is neither is refused with the part that was not understood,
so the person fixing the file knows which characters to change.

The translation is a small tokenizer rather than a handful of whole-string patterns: staff
combine the pieces freely (several day groups, morning and afternoon spans, a closing day),
and a tokenizer accepts every combination of the pieces it knows while still pointing at the
first piece it does not.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import opening_hours
from opening_hours import OpeningHours

CITY_ZONE = ZoneInfo("Asia/Shanghai")
HOLIDAY_COUNTRY = "CN"  # PH (法定节假日) in OSM syntax follows China's public holidays
# What the library raises for text it cannot parse: ParserError at run time (its stubs say
# SyntaxError, so both are caught, with ValueError for values out of range).
_UNPARSEABLE: tuple[type[Exception], ...] = (
    getattr(opening_hours, "ParserError", SyntaxError),
    SyntaxError,
    ValueError,
)
EXAMPLES = "周一至周五 9:00-17:30, 每天 8:00-20:00, 24小时, or OSM syntax such as Mo-Fr 09:00-17:30"

_DAY_CODES = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_DAY_INDEX = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
_DAY_INDEX.update({str(n): n - 1 for n in range(1, 8)})
_D = "[一二三四五六日天七1-7]"
_WEEK = "(?:周|星期|礼拜)"
_DASH = r"\s*(?:-|—|–|~|〜|至|到)\s*"
_MERIDIEM = "(上午|早上|早|中午|下午|晚上|晚)?"
_CLOCK = r"(\d{1,2})(?:[:.](\d{2})|点(?:(半)|(\d{1,2})分?)?|时)?"
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff]")

# Each piece of the Chinese forms, tried in this order at the current position.
_PIECES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("skip", re.compile(r"[\s,;，；、/|()（）]+|和|及|与|并且|且")),
    ("label", re.compile(r"(?:开放|营业|服务|办公|工作|值班)?时间(?:为|是)?:?|全年无休|无休|:")),
    ("all_day", re.compile(r"(?:全天候?|全日|24\s*小时|24h|24/7)(?:开放|营业|服务|值守|值班)?")),
    ("off", re.compile(r"(?:休息|闭馆|休馆|不开放|不营业|关闭|停业|闭店|暂停服务|停止服务)")),
    ("every_day", re.compile(r"每天|每日|天天|全周|全年|每周(?!" + _D + ")")),
    ("workdays", re.compile(r"(?:法定)?工作日")),
    ("weekend", re.compile(r"周末|双休日|星期六日|周六日")),
    ("holidays", re.compile(r"(?:法定|国家法定|公众)?(?:节假日|假日|节日|假期)")),
    ("day_range", re.compile("每?" + _WEEK + f"({_D})" + _DASH + _WEEK + f"?({_D})")),
    ("day_list", re.compile("每?" + _WEEK + _D + rf"(?:\s*[、,，/]\s*{_WEEK}?{_D}(?!\d))*")),
    ("span", re.compile(_MERIDIEM + r"\s*" + _CLOCK + _DASH + _MERIDIEM + r"\s*" + _CLOCK)),
    ("filler", re.compile(r"开放|营业|服务|办公|上班|值班|照常")),
)


class HoursError(ValueError):
    """Opening hours that could not be read; the message says which part and gives examples."""


@dataclass
class _Rule:
    """One group of days and what happens on them, while the text is being read."""

    days: list[str] = field(default_factory=list)  # OSM day selectors: "Mo-Fr", "Sa", "PH"
    spans: list[str] = field(default_factory=list)  # "09:00-17:30"
    off: bool = False

    @property
    def empty(self) -> bool:
        return not self.spans and not self.off


def normalize_hours(text: str) -> str:
    """``text`` in OSM opening_hours syntax, normalised; raise HoursError if it cannot be read.

    Chinese forms are translated; text without Chinese characters is read as OSM syntax."""
    cleaned = unicodedata.normalize("NFKC", text).strip()
    if not cleaned:
        raise HoursError("empty; write the opening hours, e.g. " + EXAMPLES)
    osm = _translate(cleaned) if _CJK.search(_without_comments(cleaned)) else cleaned
    try:
        parsed = OpeningHours(osm)
    except _UNPARSEABLE as exc:
        if osm is cleaned:
            raise HoursError(
                f"{_shown(text)} is not OpenStreetMap opening_hours syntax{_column(exc)}; "
                f"write e.g. {EXAMPLES}"
            ) from None
        raise HoursError(f"{_shown(text)} could not be translated ({osm!r} is invalid)") from None
    normal = str(parsed.normalize())
    return normal if _parses(normal) else osm


def is_open(hours: str, when: datetime) -> bool | None:
    """Whether a site with these (OSM) hours is open at ``when``; None when the hours cannot
    tell (marked unknown, or not readable).

    A naive ``when`` is the city's local time; an aware one is converted to it first, so the
    answer is right whatever zone the machine's clock is in."""
    parsed = _parsed(hours)
    if parsed is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(CITY_ZONE).replace(tzinfo=None)
    if parsed.is_unknown(when):
        return None
    return bool(parsed.is_open(when))


@functools.lru_cache(maxsize=2048)
def _parsed(hours: str) -> OpeningHours | None:
    """Parsing is the slow part and a city has a few hundred distinct strings: keep them."""
    try:
        return OpeningHours(hours, country=HOLIDAY_COUNTRY)
    except _UNPARSEABLE:
        try:
            return OpeningHours(hours)
        except _UNPARSEABLE:
            return None


def _translate(text: str) -> str:
    """The Chinese form in ``text`` as OSM rules, in the order written (later rules win)."""
    rules: list[_Rule] = []
    current = _Rule()
    position = 0
    while position < len(text):
        kind, match = _next_piece(text, position)
        if match is None:
            raise HoursError(
                f"{_shown(text)}: {_shown(_unread(text, position))} not understood; "
                f"write e.g. {EXAMPLES}"
            )
        position = match.end()
        days = _days_of(kind, match)
        if days is not None:
            if not current.empty:
                rules.append(current)
                current = _Rule()
            current.days.extend(days)
        elif kind == "span":
            current.spans.append(_span(match, text))
        elif kind == "all_day":
            current.spans.append("00:00-24:00")
        elif kind == "off":
            current.off = True
    rules.append(current)
    return _render(rules, text)


def _next_piece(text: str, position: int) -> tuple[str, re.Match[str] | None]:
    for kind, pattern in _PIECES:
        match = pattern.match(text, position)
        if match is not None and match.end() > position:
            return kind, match
    return "", None


def _days_of(kind: str, match: re.Match[str]) -> list[str] | None:
    """The OSM day selectors a day piece stands for; None for pieces that are not days."""
    if kind == "every_day":
        return ["Mo-Su"]
    if kind == "workdays":
        return ["Mo-Fr"]
    if kind == "weekend":
        return ["Sa,Su"]
    if kind == "holidays":
        return ["PH"]
    if kind == "day_range":
        first, last = (_DAY_CODES[_DAY_INDEX[group]] for group in match.groups())
        return [first if first == last else f"{first}-{last}"]
    if kind == "day_list":
        indexes = sorted({_DAY_INDEX[char] for char in re.findall(_D, match.group())})
        return [_compress(indexes)]
    return None


def _compress(indexes: list[int]) -> str:
    """[0, 1, 2, 4] → 'Mo-We,Fr': runs of three or more days as ranges."""
    parts: list[str] = []
    start = 0
    while start < len(indexes):
        end = start
        while end + 1 < len(indexes) and indexes[end + 1] == indexes[end] + 1:
            end += 1
        first, last = _DAY_CODES[indexes[start]], _DAY_CODES[indexes[end]]
        if end - start >= 2:
            parts.append(f"{first}-{last}")
        else:
            parts.extend(_DAY_CODES[i] for i in range(indexes[start], indexes[end] + 1))
        start = end + 1
    return ",".join(parts)


def _span(match: re.Match[str], text: str) -> str:
    """'下午2:00-5:30' → '14:00-17:30'; a start's meridiem carries to an end before it."""
    groups = match.groups()
    start_meridiem, start = groups[0], groups[1:5]
    end_meridiem, end = groups[5], groups[6:10]
    opens = _minutes(start, start_meridiem, text)
    closes = _minutes(end, end_meridiem, text)
    if end_meridiem is None and start_meridiem is not None and closes < opens:
        carried = _minutes(end, start_meridiem, text)  # "下午2:00-5:30": 5:30 is afternoon too
        closes = carried if carried > opens else closes
    if closes == 0 and opens > 0:
        closes = 24 * 60  # "18:00-0:00": until midnight
    return f"{_clock(opens)}-{_clock(closes)}"


def _minutes(parts: tuple[str | None, ...], meridiem: str | None, text: str) -> int:
    hour_text, minute_text, half, spoken_minutes = parts
    hour = int(hour_text or 0)
    minute = 30 if half else int(minute_text or spoken_minutes or 0)
    afternoon = meridiem in ("下午", "晚上", "晚") or (meridiem == "中午" and hour < 11)
    if afternoon and hour < 12:
        hour += 12
    if hour > 24 or minute > 59 or (hour == 24 and minute):
        raise HoursError(f"{_shown(text)}: {hour}:{minute:02d} is not a time of day")
    return hour * 60 + minute


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _render(rules: list[_Rule], text: str) -> str:
    rendered: list[str] = []
    for rule in rules:
        if rule.empty and not rule.days:
            continue
        days = ",".join(rule.days) or "Mo-Su"
        if rule.empty:
            raise HoursError(f"{_shown(text)}: no hours given for {days}; add e.g. 9:00-17:00")
        if rule.off and rule.spans:
            raise HoursError(f"{_shown(text)}: {days} has both hours and 休息; keep one")
        rendered.append(f"{days} off" if rule.off else f"{days} {','.join(rule.spans)}")
    if not rendered:
        raise HoursError(f"{_shown(text)}: no hours given; write e.g. {EXAMPLES}")
    if all(rule.off for rule in rules if not rule.empty):
        raise HoursError(
            f"{_shown(text)} only says when it is closed; add the opening hours, "
            "e.g. 周一至周五 9:00-17:30，周末休息"
        )
    if rendered == ["Mo-Su 00:00-24:00"]:
        return "24/7"
    return "; ".join(rendered)


def _without_comments(text: str) -> str:
    """OSM allows free-text comments in double quotes (in any language); ignore them when
    deciding which syntax the text is in."""
    return re.sub(r'"[^"]*"', "", text)


def _unread(text: str, position: int) -> str:
    """The piece that stopped the reading: up to the next separator, at most 12 characters."""
    rest = text[position:]
    piece = re.split(r"[\s,;，；、]", rest, maxsplit=1)[0] or rest[:1]
    return piece[:12]


def _column(exc: Exception) -> str:
    found = re.search(r"-->\s*\d+:(\d+)", str(exc))
    return f" (at character {found.group(1)})" if found else ""


def _parses(osm: str) -> bool:
    try:
        OpeningHours(osm)
    except _UNPARSEABLE:
        return False
    return True


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
