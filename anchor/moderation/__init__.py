"""Moderation: nothing unsafe is aired.

Every text that reaches speech, screen or the broker is screened first: listed sensitive
words refuse it (however they are spaced, styled or spelled by sound) unless the words around
them make the speaker their opposer, victim or asker in a text that advertises nothing (the
context rule), personal data is masked, each viewer's rate is limited, and near-duplicate
questions are recognised so they are answered once.

- `Moderator` (moderator.py): word lists → `Screening`; reloads edited lists.
- `Excuse`, `Stance` (context.py): a listed word the context rule let through, and why.
- `mask_personal_data` (personal/): phone numbers, ID and bank cards, e-mail, QQ and WeChat
  ids, street addresses and names, however they are spelled out.
- `RateLimiter` (ratelimit.py): per-viewer sliding window with bounded memory.
- `normalize_question`, `similarity`, `NEAR_DUPLICATE` (duplicates.py).
- `ModerationError` (wordlist.py): a list cannot be read; names the file and line.
"""

from anchor.moderation.context import Excuse, Stance
from anchor.moderation.duplicates import NEAR_DUPLICATE, normalize_question, similarity
from anchor.moderation.moderator import Moderator, Screening
from anchor.moderation.personal import PLACEHOLDERS, PublicData, mask_personal_data
from anchor.moderation.ratelimit import RateLimiter
from anchor.moderation.wordlist import ModerationError

__all__ = [
    "NEAR_DUPLICATE",
    "PLACEHOLDERS",
    "Excuse",
    "ModerationError",
    "Moderator",
    "RateLimiter",
    "Screening",
    "Stance",
    "mask_personal_data",
    "PublicData",
    "normalize_question",
    "similarity",
]
