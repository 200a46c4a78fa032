"""Chinese text as a listener expects to hear it: every number written out in characters.

Schedules and answers are written the way people type (12000元, 9:00-17:30, 拨打12351,
《劳动合同法》第47条, 下载APP), but a voice reads what is written, and how a number is said in
Mandarin depends on what it is: an amount is read as a quantity (一万两千元), a year, a phone
number or a code digit by digit (二零二四年, 幺二三五幺), a time as hours and minutes
(八点三十分), an article number as an ordinal (第四十七条). So the rules below go from the
most specific form to the most general, each turning the digits it recognises into
characters; whatever is left over at the end is a plain quantity. The result has no Arabic
digits left, which is what a neural front-end that reads only characters needs, and is what
makes normalising twice change nothing.

两 or 二: 两 counts (两个, 两天, 两万元, 两点) and leads a thousand or a hundred (两千, 两百,
一万两千); 二 names and orders (二月, 二号, 第二条, 二点五, 百分之二, 二十二).
In phone numbers 1 is read 幺, as Mandarin speakers do so it is not heard as 七; other codes
keep 一.

Acronyms (OBS, APP, HR) are spelled out letter by letter with spaces: espeak-ng's Mandarin
voice says a spaced capital by its Chinese letter name (O B S → "ou bi ai-si"), but reads a
run of capitals as an English word ("obz").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

_DIGIT_NAMES = "零一二三四五六七八九"
_PLACES = ("", "十", "百", "千")
_SECTIONS = ("", "万", "亿", "万亿")
_MAX_CARDINAL_DIGITS = 16  # up to 万亿; longer runs can only be codes

# A following word that makes the number a count, so 2 is read 两.
_COUNTING_UNITS = (
    "个|位|名|人|次|件|户|家|岁|周|天|小时|钟头|分钟|分|秒|点|年(?!级|代|度)|项|条|种|类|份|张|"
    "本|台|辆|部|套|间|栋|所|座|门|双|对|遍|段|句|节|笔|批|样|倍|成|万|亿|千|百|元|块|角|毛|"
    "斤|公斤|千克|克|吨|米|公里|千米|厘米|亩|平方|升|箱|包|瓶|盒|杯|碗|片|粒|颗|趟|回|口|头"
)
_COUNTING = re.compile(rf"\s*(?:{_COUNTING_UNITS})")
# A following word that makes a run of digits an amount rather than a code or a number.
_AMOUNT = re.compile(rf"\s*(?:{_COUNTING_UNITS}|号|楼|层|级|期|届|路|章|款|月|日|字|度)")
_PHONE_CONTEXT = re.compile(
    r"(?:电话|热线|拨打|致电|来电|手机|呼叫|传真|客服|报警|急救)[^。！？!?]{0,8}$"
)
_SHORT_PHONE_NUMBERS = frozenset({"110", "114", "119", "120", "122"})
_DASH = r"\s*[-－–—~～至到]\s*"

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]
Reading = Literal["count", "amount", "name"]


def cardinal(number: str | int, reading: Reading = "amount") -> str:
    """`number` read as a quantity: 12000 → 一万两千, 110 → 一百一十, 1005 → 一千零五.

    `reading` says which 2s are 两: "count" before a measure word (两个, 两千元), "amount"
    for a number on its own (两千, but 二), "name" for ordinals, dates and percentages,
    which keep 二 throughout (第二百条, 百分之二百).
    """
    value = int(number)
    if value == 0:
        return "零"
    if value == 2 and reading == "count":
        return "两"
    sections = []
    while value:
        sections.append(value % 10000)
        value //= 10000
    top = len(sections) - 1
    words: list[str] = []
    gap = False
    for index in range(top, -1, -1):
        section = sections[index]
        if section == 0:
            gap = True
            continue
        if gap or (index < top and section < 1000):
            words.append("零")
        words.append(
            _section(section, leading=index == top, before_unit=index > 0, liang=reading != "name")
        )
        words.append(_SECTIONS[index])
        gap = False
    return "".join(words)


def _section(section: int, *, leading: bool, before_unit: bool, liang: bool) -> str:
    """One group of four digits; `leading` for the first group of the number."""
    if section == 2 and before_unit and liang:
        return "两"  # 两万, 两亿
    digits = str(section)
    words: list[str] = []
    zero = False
    for i, digit in enumerate(digits):
        place = len(digits) - 1 - i
        if digit == "0":
            zero = bool(words)
            continue
        if zero:
            words.append("零")
            zero = False
        first = leading and i == 0
        if digit == "1" and place == 1 and first:
            words.append("十")  # 十二, 十五万; but 一百一十
            continue
        if digit == "2" and liang and (place == 3 or (place == 2 and first)):
            name = "两"
        else:
            name = _DIGIT_NAMES[int(digit)]
        words.append(name + _PLACES[place])
    return "".join(words)


def digits(run: str, phone: bool = False) -> str:
    """Digit by digit (二零二四); in a phone number 1 is 幺."""
    names = "零幺二三四五六七八九" if phone else _DIGIT_NAMES
    return "".join(names[int(d)] if d.isdigit() else d for d in run)


def decimal(number: str) -> str:
    """3.14 → 三点一四, 0.5 → 零点五; a whole number as a plain (not counting) quantity."""
    whole, _, fraction = number.partition(".")
    spoken = cardinal(whole, "name") if len(whole) <= _MAX_CARDINAL_DIGITS else digits(whole)
    return spoken + ("点" + digits(fraction) if fraction else "")


def _quantity(number: str, following: str) -> str:
    """A number read as an amount, counting when a measure word follows it."""
    if "." in number:
        return decimal(number)
    if len(number) > _MAX_CARDINAL_DIGITS:
        return digits(number)
    return cardinal(number, "count" if _COUNTING.match(following) else "amount")


def _after(match: re.Match[str]) -> str:
    return match.string[match.end() : match.end() + 4]


def _before(match: re.Match[str]) -> str:
    return match.string[: match.start()]


def _date(match: re.Match[str]) -> str:
    """2024-03-05, 2024/3/5, 2024.3.5 or 2024年3月5日 (号) → 二零二四年三月五日 (号)."""
    numeric = match.group("m") is not None
    month, day = match.group("m", "d") if numeric else match.group("m2", "d2")
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        return match.group(0)
    day_word = "日" if numeric else match.group(0)[-1]
    return (
        f"{digits(match.group('y'))}年{cardinal(month, 'name')}月{cardinal(day, 'name')}{day_word}"
    )


def _clock(hour: str, minute: str | None, second: str | None = None) -> str:
    spoken = cardinal(hour, "count") + "点"
    if minute and int(minute):
        spoken += ("零" if minute.startswith("0") else "") + cardinal(minute, "name") + "分"
    if second and int(second):
        spoken += cardinal(second, "name") + "秒"
    return spoken


def _time(match: re.Match[str]) -> str:
    spoken = _clock(match.group("h"), match.group("m"), match.group("s"))
    if match.group("h2") is not None:
        spoken += "到" + _clock(match.group("h2"), match.group("m2"))
    return spoken


def _percent_range(match: re.Match[str]) -> str:
    return f"百分之{decimal(match.group(1))}到百分之{decimal(match.group(2))}"


def _phone_groups(match: re.Match[str]) -> str:
    """Dashed digit groups (020-12345678转8001, 400-800-1234): a phone number, paused at
    the dashes."""
    number, extension, rest = match.group(0).partition("转")
    groups = "，".join(digits(group, phone=True) for group in re.split(r"[-－ ]", number))
    return groups + extension + digits(rest, phone=True)


def _lone_number(match: re.Match[str]) -> str:
    """A run of digits on its own: a phone number, a code or an amount, by its form and
    what surrounds it."""
    run = match.group(0)
    following = _after(match)
    if _AMOUNT.match(following):
        return _quantity(run, following)
    phone_like = re.fullmatch(r"1[3-9]\d{9}|12\d{3}|95\d{3,6}|96\d{3}|400\d{7}|800\d{7}", run)
    called = len(run) >= 5 or run in _SHORT_PHONE_NUMBERS
    if phone_like or (called and _PHONE_CONTEXT.search(_before(match))):
        return digits(run, phone=True)
    if len(run) >= 5 or (len(run) >= 2 and run.startswith("0")):
        return digits(run)
    return _quantity(run, following)


def _range(match: re.Match[str]) -> str:
    low, high = match.group(1), match.group(2)
    following = _after(match)
    if re.match(r"\s*年(?!级|代)", following) and len(low) == len(high) == 4:
        return f"{digits(low)}到{digits(high)}"
    return f"{_quantity(low, following)}到{_quantity(high, following)}"


def _decimal_amount(match: re.Match[str]) -> str:
    """A decimal; money drops the zeros a price is printed with (300.00元 → 三百元)."""
    number = match.group(0)
    if re.match(r"\s*(?:元|块|万|亿)", _after(match)):
        number = number.rstrip("0").rstrip(".")
    return decimal(number)


def _fraction(match: re.Match[str]) -> str:
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if not 0 < numerator < denominator:
        return match.group(0)
    return f"{cardinal(denominator, 'name')}分之{cardinal(numerator, 'name')}"


def _spell(match: re.Match[str]) -> str:
    return " " + " ".join(match.group(0)) + " "


# A rule that starts with a number starts with (?<![\d.]): tried at every digit of a long run,
# an unanchored one scans the run from each of them (quadratic in the run's length).
_NUMBER = r"\d+(?:\.\d+)?"
_RULES: tuple[Rule, ...] = (
    # 50,000 → 50000
    (re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])"), lambda m: m.group(0).replace(",", "")),
    # ¥1.5万 → 1.5万元, HK$100 → 100港元, $100 → 100美元
    (
        re.compile(rf"[¥￥]\s*({_NUMBER})\s*([万亿]?)(?:元|块)?"),
        lambda m: f"{m.group(1)}{m.group(2)}元",
    ),
    (re.compile(rf"HK\$\s*({_NUMBER})\s*([万亿]?)"), lambda m: f"{m.group(1)}{m.group(2)}港元"),
    (
        re.compile(rf"(?<![A-Za-z])(?:US)?\$\s*({_NUMBER})\s*([万亿]?)"),
        lambda m: f"{m.group(1)}{m.group(2)}美元",
    ),
    # 2024-03-05, 2024/3/5, 2024.3.5, 2024年3月5日
    (
        re.compile(
            r"(?<![\d.])(?P<y>(?:19|20)\d\d)(?:(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})"
            r"(?![\d.])|年(?P<m2>\d{1,2})月(?P<d2>\d{1,2})[日号])"
        ),
        _date,
    ),
    # 9:00-17:30, 8:30, 14:05:30
    (
        re.compile(
            r"(?<![\d:.])(?P<h>[01]?\d|2[0-4])[:：](?P<m>[0-5]\d)(?:[:：](?P<s>[0-5]\d))?"
            rf"(?:{_DASH}(?P<h2>[01]?\d|2[0-4])[:：](?P<m2>[0-5]\d))?(?![\d:])"
        ),
        _time,
    ),
    # 3:1 → 三比一 (a colon that is not a time)
    (re.compile(r"(?<![\d:.])(\d+)[:：](\d+)(?![\d:])"), lambda m: f"{m.group(1)}比{m.group(2)}"),
    # 5%-10%, 5-10% → 百分之五到百分之十; 3.5% → 百分之三点五; 5‰ → 千分之五
    (re.compile(rf"(?<![\d.])({_NUMBER})%?{_DASH}({_NUMBER})\s*[%％]"), _percent_range),
    (re.compile(rf"(?<![\d.])({_NUMBER})\s*[%％]"), lambda m: "百分之" + decimal(m.group(1))),
    (re.compile(rf"(?<![\d.])({_NUMBER})\s*‰"), lambda m: "千分之" + decimal(m.group(1))),
    # phone numbers written in groups: 020-12345678, 400-800-1234
    (
        re.compile(
            r"(?<![\d.])(?:(?:0\d{2,3}|[48]00)(?:[-－]\d{3,8})+|0\d{2,3}(?: \d{3,8})+"
            r"|1[3-9]\d[- ]\d{4}[- ]\d{4})(?:转\d{1,6})?(?![\d.])"
        ),
        _phone_groups,
    ),
    # 3-5天, 9-17点, 2024-2025年, 5000-8000元, 1.5-2万
    (
        re.compile(
            rf"(?<![\d.\-])((?:[1-9]\d{{0,5}}|0)(?:\.\d+)?)(?:{_DASH})([1-9]\d{{0,5}}(?:\.\d+)?)"
            r"(?![\d.\-])"
        ),
        _range,
    ),
    # other dashed digit groups: read digit by digit, paused at the dashes
    (re.compile(r"(?<![\d.])\d+(?:[-－]\d+)+(?![\d.])"), _phone_groups),
    # 第20条 → 第二十条: ordinals are never 两
    (re.compile(r"第\s*(\d{1,8})"), lambda m: "第" + cardinal(m.group(1), "name")),
    # 2024年 → 二零二四年
    (re.compile(r"(?<![\d.])((?:19|20)\d\d)(?=\s*年(?!级|代))"), lambda m: digits(m.group(1))),
    # 3月, 5日, 2号: names, not counts
    (
        re.compile(r"(?<![\d.])(1[0-2]|0?[1-9])(?=\s*月)"),
        lambda m: cardinal(m.group(1), "name"),
    ),
    (
        re.compile(r"(?<![\d.])(3[01]|[12]\d|0?[1-9])(?=\s*[日号])"),
        lambda m: cardinal(m.group(1), "name"),
    ),
    # 1/3 → 三分之一 (a proper fraction only: 24/7 is not one)
    (re.compile(r"(?<![\d./])(\d{1,3})\s*/\s*(\d{1,3})(?![\d./])"), _fraction),
    # 7×24小时 → 七乘二十四小时
    (re.compile(r"(?<=\d)\s*[×xX*]\s*(?=\d)"), lambda m: "乘"),
    # -5摄氏度 → 零下五摄氏度, -5 → 负五
    (re.compile(rf"(?<![0-9A-Za-z.])[-−](?={_NUMBER}\s*摄氏度)"), lambda m: "零下"),
    (re.compile(rf"(?<![0-9A-Za-z.])[-−](?={_NUMBER})"), lambda m: "负"),
    # 5.1劳动节, 3·8妇女节: a festival's month and day, not a decimal
    (
        re.compile(r"(?<![\d.])(1[0-2]|[1-9])[.·](\d{1,2})(?![\d.])(?=[^，。,]{0,4}节)"),
        lambda m: cardinal(m.group(1), "name") + cardinal(m.group(2), "name"),
    ),
    # 101室: room numbers are said like phone numbers
    (re.compile(r"(?<![\d.])\d{3,4}(?=\s*(?:室|房))"), lambda m: digits(m.group(0), phone=True)),
    # decimals and what is left: amounts, phone numbers, codes
    (re.compile(r"(?<![\d.])\d+\.\d+(?![\d.])"), _decimal_amount),
    (re.compile(r"\d+"), _lone_number),
    # acronyms: OBS → O B S
    (re.compile(r"(?<![A-Za-z])[A-Z]{2,8}(?![A-Za-z])"), _spell),
)


_SPACE_BY_PUNCTUATION = re.compile(
    r"\s+(?=[，。！？；：、）》」』”])|(?<=[，。！？；：、（《「『“])\s+"
)


def normalise_chinese(text: str) -> str:
    """Chinese `text` with its numbers, symbols and acronyms written as they are said."""
    for pattern, spoken in _RULES:
        text = pattern.sub(spoken, text)
    return _SPACE_BY_PUNCTUATION.sub("", text)
