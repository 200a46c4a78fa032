"""What a string of digits is, from the digits alone or with the word before it.

- **Mobile**: 11 digits 13–19, also after 86 / 0086.
- **ID card**: 18 characters (the last may be X) or the old 15 digits, masked when the area
  digit and the birth date are plausible, *whether or not the check digit is right*: a viewer
  who mistypes one digit has still published who they are. The check digit only decides, for
  an all-digit number that is also a valid bank-card number, which of the two it is called.
- **Bank card**: 16–19 digits that pass the Luhn check (what tells a card from an order number).
- **Landline**: 0 + a real area-code shape (010, 02x, 0[3-9]xx) + a 7–8 digit local number,
  also after 86 / 0086 with the 0 dropped; and Hong Kong and Macau numbers after 852 / 853.

After a cue word the kind is taken from the cue: 5–11 digits after "QQ", 5–20 after "微信",
7–12 after "电话", any 15–18 after "身份证", 12–19 after "卡号". Service numbers are not
personal: the short ones (12351, 95588) are too short for any cue, and 400 / 800 lines are
left alone even after "电话".
"""

from __future__ import annotations

import datetime

LONGEST = 21  # digits: a 19-digit card, or 0086 and a mobile, fit
_PREFIXES = ("0086", "86")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_SERVICE_PREFIXES = ("400", "800")  # nationwide business lines, 10 digits
_HK_MACAU = ("00852", "852", "00853", "853")


def classify(digits: str, cue: str | None) -> str | None:
    """The kind of personal number ``digits`` is (X only last), or None if it is not one."""
    if len(digits) > LONGEST or "X" in digits[:-1]:
        return None
    kind = _by_shape(digits)
    if kind is not None:
        return kind
    return None if cue is None else _by_cue(digits, cue)


def _by_shape(digits: str) -> str | None:
    if _is_mobile(_unprefixed(digits)):
        return "mobile"
    if len(digits) == 18 and _plausible_id(digits):
        if digits[-1] != "X" and not _id_check_ok(digits) and _luhn_ok(digits):
            return "bank_card"
        return "id_card"
    if len(digits) == 15 and _plausible_old_id(digits):
        return "id_card"
    if not digits.isdigit():
        return None
    if 16 <= len(digits) <= 19 and _luhn_ok(digits):
        return "bank_card"
    if _is_landline(digits) or (
        digits.startswith(_PREFIXES) and _is_landline("0" + _unprefixed(digits))
    ):
        return "phone"
    if any(digits.startswith(code) and len(digits) == len(code) + 8 for code in _HK_MACAU):
        return "phone"
    return None


def _by_cue(digits: str, cue: str) -> str | None:
    count = len(digits)
    if cue == "id_card":
        return "id_card" if 15 <= count <= 18 else None
    if not digits.isdigit():
        return None
    if cue == "bank_card":
        return "bank_card" if 12 <= count <= 19 else None
    if cue == "qq":
        return "qq" if 5 <= count <= 11 and digits[0] != "0" else None
    if cue == "wechat":
        return "wechat" if 5 <= count <= 20 else None
    if cue == "phone" and 7 <= count <= 12 and not digits.startswith(_SERVICE_PREFIXES):
        return "phone"
    return None


def _unprefixed(digits: str) -> str:
    for prefix in _PREFIXES:
        if digits.startswith(prefix) and len(digits) > len(prefix) + 9:
            return digits[len(prefix) :]
    return digits


def _is_mobile(digits: str) -> bool:
    return len(digits) == 11 and digits.isdigit() and digits[0] == "1" and digits[1] in "3456789"


def _is_landline(digits: str) -> bool:
    """0 + area code + local number: 010/02x with 7–8 digits, 0[3-9]xx with 7–8 digits."""
    if not 10 <= len(digits) <= 12 or not digits.startswith("0") or not digits.isdigit():
        return False
    if digits[1] == "1":  # 010 is the only area code in 01x
        if digits[2] != "0":
            return False
        area = 3
    elif digits[1] == "2":
        area = 3
    else:
        area = 4
    local = digits[area:]
    return 7 <= len(local) <= 8 and local[0] != "0"


def _plausible_id(digits: str) -> bool:
    """Area code starting 1–8 and a real birth date between 1900 and 2099."""
    if digits[0] not in "12345678" or not digits[:17].isdigit():
        return False
    return _real_date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))


def _plausible_old_id(digits: str) -> bool:
    """The 15-digit card of before 1999: area, YYMMDD born 1900–1999, three digits."""
    if digits[0] not in "12345678" or not digits.isdigit():
        return False
    return _real_date(1900 + int(digits[6:8]), int(digits[8:10]), int(digits[10:12]))


def _real_date(year: int, month: int, day: int) -> bool:
    if not 1900 <= year <= 2099:
        return False
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def _id_check_ok(digits: str) -> bool:
    total = sum(int(d) * w for d, w in zip(digits[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == digits[17]


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0
