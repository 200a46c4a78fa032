"""Street addresses: a street and its house number, and the building, unit and room in it.

"中山市东区兴中道8号3栋502室" becomes "中山市东区[地址]": the city and district stay (they
say where a question comes from, not who asks it), the street, number, building and room go.
Three shapes are recognised, numbers in Arabic or Chinese numerals:

- a street (…路 道 街 巷 弄 胡同 村 坊 大厦 广场 花园 公寓 苑) then a number with 号, then any
  building / unit / floor / room: "兴中道8号", "石岐区民生路12号之二", "新安村3组15号";
- a building with a unit or room but no street: "3栋502室", "5号楼2单元301", "B座1203";
- a room on its own: "502室".

A number with 号 after anything else is a date or a count ("5月1号", "3号线") and stays, as
do words that end like a street but are not one ("知道", "这条路", "农村").
"""

from __future__ import annotations

import re

from anchor.moderation.personal.text import CJK, Span

_N = r"[0-9〇零一二三四五六七八九十百两幺]{1,5}"
_ROOM = r"(?:[0-9]{2,5}|[〇零一二三四五六七八九幺]{3,4})"
_SUFFIX = r"(?:路|道|街|巷|弄|胡同|村|坊|大厦|广场|花园|公寓|苑)"
_UNIT = r"(?:号楼|栋|幢|座|单元|楼|层|室|房|户|号|组)"
_UNITS = rf"(?:\s*[-之]?\s*(?:{_N}|[a-z])\s*{_UNIT})*(?:\s*-?\s*{_ROOM}(?![0-9]))?"
_STREET = re.compile(
    rf"(?P<street>[{CJK}]{{0,8}}?{_SUFFIX})(?:[东西南北中]段?|段)?\s*"  # 南海大道北
    rf"(?:{_N}\s*(?:组|队|巷|弄|排|横|街)\s*)*"  # 3组, 二巷
    rf"{_N}\s*号(?:院|楼|铺)?(?:之[一二三四五六七八九十])?{_UNITS}"  # 8号之二 3栋502室
)
_BUILDING = re.compile(
    rf"(?<![0-9])(?:{_N}|[a-z])\s*(?:栋|幢|座|号楼)\s*-?\s*"
    rf"(?:{_N}\s*单元\s*-?\s*)?(?:{_N}\s*(?:楼|层)\s*-?\s*)?"
    rf"(?:{_N}\s*(?:室|房|户|号)|{_ROOM}(?![0-9]))"
    rf"|(?<![0-9]){_N}\s*单元\s*-?\s*(?:{_N}\s*(?:室|房|户|号)|{_ROOM}(?![0-9]))"
)
_ROOM_ONLY = re.compile(r"(?<![0-9])[0-9]{3,4}\s*(?:室|房(?![租费价贷款产子屋东间]))")
# Where a street's name cannot reach back past: places above the street, and the words
# that lead into an address ("住在", "地址是").
_BEFORE_STREET = set("在住是到于的址家从去来往至和与及或我你他她省市区县镇乡旗州")
_NOT_STREETS = re.compile(
    r"(?:[这那哪每一]条|[知渠频报味难通管轨说问厚走思网线电出马铁航跑弯正歪门上半顺绕赶"
    r"领开带让霸赤地隧车]|人行|步行|们|本|农|乡|山|全|整|同|老)(?:道|路|街|村)\Z"
)


def find_addresses(folded: str) -> list[Span]:
    """Street addresses, buildings and rooms in ``folded``."""
    spans: list[Span] = []
    for found in _STREET.finditer(folded):
        street = found.group("street")
        cut = max((i + 1 for i, char in enumerate(street) if char in _BEFORE_STREET), default=0)
        if _NOT_STREETS.search(street[cut:]):
            continue
        spans.append(Span(found.start() + cut, found.end(), "address"))
    for pattern in (_BUILDING, _ROOM_ONLY):
        spans.extend(
            Span(found.start(), found.end(), "address") for found in pattern.finditer(folded)
        )
    return spans
