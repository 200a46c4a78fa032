"""Words that say what the number or handle after them is: "QQ", "微信", "电话", "身份证".

A viewer who writes "加我QQ 12345678" has said it is a QQ number; without the word, eight
digits are an amount, a date or an order number and stay as typed. So short numbers are
masked only after a cue, and the cue also names what a long number is when its digits alone
cannot tell (a mistyped ID, a card number that fails the check digit).

The cue may stand a few characters before the number ("QQ号是：", "电话 ·"), never across a
sentence end or another number.
"""

from __future__ import annotations

import re

# Folded text: lower case, full-width forms already ASCII.
_CUES = {
    "qq": r"qq|扣扣|抠抠|蔻蔻|企鹅号?|(?<![a-z0-9])q(?=\s*[:=号])",
    "wechat": (
        r"微信|威信|薇信|维信|徽信|危信|v信|绿泡泡|(?<![a-z0-9])(?:vx|wx|weixin|wechat|vchat)"
        r"|(?:加|\+|➕)\s*v(?![a-z0-9])|(?<![a-z0-9])v(?=\s*[:=])"
    ),
    "id_card": r"身份证|身份号|证件号|idcard|id\s*card|sfz",
    "bank_card": r"银行卡|卡号|工资卡|储蓄卡|信用卡|借记卡|银行账户|银行账号|收款账号",
    "phone": (
        r"电话|手机|座机|固话|联系方式|联系|来电|致电|打给我|打我|呼我|短信"
        r"|(?<![a-z])(?:tel|phone|mobile|call(?:\s+me)?)(?![a-z])"
    ),
}
_FILLER = (
    r"(?:[\s:=#\-_.~>|/()\[\]【】·•*]|号码|号|码|账号|帐号|id|是|为|的|我的|我|加|一下|多少"
    r"|私聊|私信|找|给|留个|留)*"
)
_CUE_BEFORE = re.compile(
    "(?:" + "|".join(f"(?P<{kind}>{cue})" for kind, cue in _CUES.items()) + ")" + _FILLER + r"\Z"
)
_WINDOW = 16


def cue_before(folded: str, at: int) -> str | None:
    """The kind a cue just before position ``at`` names (qq, wechat, id_card, bank_card,
    phone), or None."""
    window = folded[max(0, at - _WINDOW) : at]
    found = _CUE_BEFORE.search(window)
    return None if found is None else found.lastgroup


def wechat_cue() -> str:
    """The WeChat cue with its filler, as a pattern for handles written in letters."""
    return "(?:" + _CUES["wechat"] + ")" + _FILLER
