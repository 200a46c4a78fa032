"""Near-duplicate questions: many viewers ask the same thing in different words.

Questions are compared by the character bigrams of what they ask, after dropping what
every question has: masked personal data, politeness (请问, 主播, 谢谢), question
frames (怎么, 如何, 需要, 哪些) and particles (吗, 呢, 了, 的). What remains is mostly
the topic ("工伤认定材料"), so two phrasings of one question score high and two
questions on one topic with a different ask ("工伤认定" vs "工伤赔偿") score low. Both
sides lose the same words, so dropping a character that was part of a real word costs
nothing in consistency.
"""

from __future__ import annotations

import re

from anchor.moderation.folding import fold, skeleton
from anchor.moderation.personal import PLACEHOLDERS

NEAR_DUPLICATE = 0.6  # similarity at or above which two questions are one question

_FRAME_WORDS = (
    "请问", "想问一下", "想问下", "想问", "问一下", "问下", "我想知道", "想知道",
    "咨询一下", "咨询",
    "你好", "您好", "大家好", "主播", "老师", "谢谢", "麻烦", "一下",
    "怎么办", "怎么样", "怎么", "怎样", "如何", "什么", "哪些", "哪里", "哪儿", "多少",
    "需要", "可以", "能不能", "能否", "是否", "是不是", "有没有", "应该", "我该", "我们", "我",
    "有", "被", "还",
    "吗", "呢", "啊", "呀", "吧", "嘛", "哦", "了", "的",
)  # fmt: skip
_FRAME = re.compile("|".join(sorted(_FRAME_WORDS, key=len, reverse=True)))
_PLACEHOLDER = re.compile("|".join(map(re.escape, PLACEHOLDERS.values())))
# English frame words go as whole words, before the spaces between words are dropped.
_ENGLISH_FRAME = re.compile(
    r"\b(?:hi|hello|please|thanks|thank|could|would|can|how|what|do|does|did|i|me|my|you"
    r"|the|a|an|to|is|are|should)\b"
)


def normalize_question(text: str) -> str:
    """What a question asks, for comparison: folded letters and digits, frame words and masked
    personal data dropped."""
    folded = skeleton(_ENGLISH_FRAME.sub(" ", fold(_PLACEHOLDER.sub(" ", text))))
    while True:
        shorter = _FRAME.sub("", folded)
        if shorter == folded:
            return shorter
        folded = shorter


def similarity(a: str, b: str) -> float:
    """0..1: Dice coefficient of the character bigrams of the normalized questions.

    Questions that are nothing but frame words ("你好", "请问？") are equal only if their
    letters are equal.
    """
    left, right = normalize_question(a), normalize_question(b)
    if not left or not right:
        if left or right:
            return 0.0
        plain = skeleton(a)
        return 1.0 if plain and plain == skeleton(b) else 0.0
    left_grams, right_grams = _bigrams(left), _bigrams(right)
    shared = len(left_grams & right_grams)
    return 2 * shared / (len(left_grams) + len(right_grams))


def _bigrams(text: str) -> set[str]:
    if len(text) < 2:
        return {text}
    return {text[i : i + 2] for i in range(len(text) - 1)}
