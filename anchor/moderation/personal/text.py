"""The text as the detectors read it: folded one character at a time, so every position in
the folded text is the same position in what the viewer typed and a span found in one masks
the same characters in the other.

Folding undoes the cheap disguises: full-width letters, digits and signs (ＱＱ, １３８, ＠),
circled and styled digits (①), capitals, and the traditional forms of the words the
detectors look for (電話, 微信號, 張). A character whose folded form is longer than one
character (㈠ → "(一)") is kept as typed. Digits are read in every form a viewer uses to spell
a number out: Arabic in any script, Chinese numerals as read digit by digit (一三八, 幺 and 两
for 1 and 2, the radio readings 洞 拐 勾 for 0, 7 and 9) and the financial forms (壹贰叁).
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

NUMERALS = {
    **dict.fromkeys("〇零○洞", "0"),
    **dict.fromkeys("一幺壹", "1"),
    **dict.fromkeys("二两贰", "2"),
    **dict.fromkeys("三叁", "3"),
    **dict.fromkeys("四肆", "4"),
    **dict.fromkeys("五伍", "5"),
    **dict.fromkeys("六陆", "6"),
    **dict.fromkeys("七柒拐", "7"),
    **dict.fromkeys("八捌", "8"),
    **dict.fromkeys("九玖勾", "9"),
}
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Traditional characters of the words the detectors look for (cues, address units, common
# surnames), so "微信號", "電話", "棟" and "張三" read like their simplified forms.
_TRADITIONAL = str.maketrans(
    "號碼電話機聯繫絡證銀帳賬郵鵝棟單樓層戶組隊廈廣場園東區縣鎮鄉貳陸兩"
    "張劉陳楊黃趙吳鄭謝許韓馮鄧蕭蔣葉蘇盧鍾譚範賈韋鄒孫馬羅湯溫麥鄺賴聶龔錢嚴龍賀顧歐關陽",
    "号码电话机联系络证银帐账邮鹅栋单楼层户组队厦广场园东区县镇乡贰陆两"
    "张刘陈杨黄赵吴郑谢许韩冯邓萧蒋叶苏卢钟谭范贾韦邹孙马罗汤温麦邝赖聂龚钱严龙贺顾欧关阳",
)


class Span(NamedTuple):
    """Characters ``start:end`` of the text are personal data of ``kind``."""

    start: int
    end: int
    kind: str


def fold(text: str) -> str:
    """NFKC and lower case per character; the result has the length of ``text``."""
    return "".join(_fold_char(char) for char in text)


def digit(char: str) -> str | None:
    """The ASCII digit a (folded) character stands for, or None."""
    if "0" <= char <= "9":
        return char
    numeral = NUMERALS.get(char)
    if numeral is not None:
        return numeral
    value = unicodedata.decimal(char, None)
    return None if value is None else str(value)


def is_numeral(char: str) -> bool:
    """A Chinese numeral (as opposed to a digit of a positional script)."""
    return char in NUMERALS


def _fold_char(char: str) -> str:
    if char.isascii():
        return char.lower()
    folded = unicodedata.normalize("NFKC", char).lower().translate(_TRADITIONAL)
    return folded if len(folded) == 1 else char
