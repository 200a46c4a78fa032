"""E-mail addresses and chat handles, as typed and as spelled out to dodge a filter.

E-mail: the plain form, the full-width one (zhang＠qq．com), and the spoken ones: "at", "(at)",
"艾特" or "#" for @, and "dot", "点" or "。" for the dot (zhang at qq dot com, zhang＠qq。com).
A spelled-out address needs a known ending (com, cn, net, ...) or a known mail provider
(qq, 163, gmail, ...), so "meet at 8" or "look at this" is not an address.

Chat handles: a WeChat id (letters first, then letters, digits, _ or -) after a WeChat cue
("vx: abc123", "微信号abc_123", "V信 zhang88", "加v abc123"). Numeric QQ and WeChat ids are
numbers and found with the numbers, by their cue.
"""

from __future__ import annotations

import re

from anchor.moderation.personal.cues import wechat_cue
from anchor.moderation.personal.text import Span

# A local part starts where a run of its characters starts: never tried from inside one.
_LOCAL = r"(?<![a-z0-9._%+\-])[a-z0-9](?:[a-z0-9._%+\-]*[a-z0-9_])?"
_LABEL = r"[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?"
_ENDINGS = (
    r"(?:com|cn|net|org|edu|gov|info|biz|cc|co|io|me|top|vip|xyz|site|online|hk|tw|mo|sg|us"
    r"|uk|jp|de|fr)"
)
_PROVIDERS = (
    r"(?:qq|foxmail|163|126|yeah|sina|sohu|139|189|wo|aliyun|tom|21cn|gmail|hotmail|outlook"
    r"|live|yahoo|icloud|msn)"
)
_AT = r"(?:\s*(?:@|\(at\)|\[at\]|\{at\}|<at>|艾特|圈a)\s*|\s+at\s+)"
_DOT = r"(?:\s*(?:\.|。|点|\(dot\)|\[dot\]|\{dot\}|<dot>)\s*|\s+dot\s+)"
_END = r"(?![a-z0-9])"

_EMAILS = (
    re.compile(rf"{_LOCAL}@{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,}}{_END}"),
    re.compile(rf"{_LOCAL}(?:{_AT}|\s*#\s*){_LABEL}(?:{_DOT}{_LABEL})*?{_DOT}{_ENDINGS}{_END}"),
    re.compile(rf"{_LOCAL}{_AT}{_PROVIDERS}(?:{_DOT}{_ENDINGS})?{_END}"),
)
_WECHAT_ID = re.compile(rf"(?:{wechat_cue()})(?P<id>[a-z][a-z0-9_\-]{{3,19}}){_END}")


def find_accounts(folded: str) -> list[Span]:
    """E-mail addresses and WeChat ids in ``folded``; overlapping finds are all returned."""
    spans = [
        Span(found.start(), found.end(), "email")
        for pattern in _EMAILS
        for found in pattern.finditer(folded)
    ]
    spans.extend(
        Span(found.start("id"), found.end("id"), "wechat") for found in _WECHAT_ID.finditer(folded)
    )
    return spans
