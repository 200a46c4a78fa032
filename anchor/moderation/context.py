"""The context rule: a listed word whose speaker opposes, reports, suffers or asks about it.

A union channel must take 老板让我开假发票怎么办 and air 远离毒品, and must not air 代开发票
or 网赌平台稳赚. All four hold a listed word; what tells them apart is what the speaker does
with it. The rule reads the folded text (the skeleton of textview.py: symbols, spacing,
look-alike letters and traditional characters already undone) around one hit at a time:

- **An advert always wins.** Nothing is let through by this rule in a text that offers
  something anywhere in it (加微信, 私聊, 联系, 出售, 代办, 专业, 稳赚, 包过, 价格, 货源,
  上门…, found like listed words, so 加 V 信, 薇信 and jia wei xin count too) or that gives a
  contact (a phone number, a QQ or WeChat id or an e-mail address, masked before screening).
  An advert word inside a listed word (出售 in 出售银行卡) is part of that word, not an offer.
- **A frame right before the hit**, in the same clause, with at most three small words
  between (people such as 同事 or 老板, scope such as 任何 or 网络, places such as 在宿舍,
  taking part such as 参与, 碰, 开 or 办): the speaker *opposes* it (举报, 远离, 拒绝, 抵制,
  防范, 警惕, 打击, 禁止, 戒掉, 预防, 揭露, 严禁, 不要, 别…), is its *victim* (被, 遇到,
  陷入, 欠了, 让我, 逼我, 要我…) or *asks* whether something is it (算不算, 是不是).
- **A question or a verdict right after the hit**, at most six characters on (a comma may
  stand between): the speaker *asks* what to do (怎么办, 违法吗, 能告, 报警, 维权, 投诉,
  举报…), is its *victim* (输光, 欠了) or *opposes* it (违法, 危害, 骗局, 害人); or the
  question that ends the text, at most twelve characters on (吸毒的员工公司能直接辞退吗).
  No negation may stand between (网赌不违法, 六合彩不是骗局), except in a question
  (要不要报告).
- **Joined to a listed word the rule let through**, by nothing or by 和, 与, 及, 或 in the
  same clause, a hit stands in that word's frame: 举报卖淫嫖娼, 警惕笑气和神仙水.
- **An insult** (a list marked ``%context quoted``) is let through only when it is *quoted*
  as what someone was called (他骂我傻逼, 被人骂傻逼, 说我是傻逼). Opposing words do not
  excuse it: 别他妈的…, 远离傻逼 are insults themselves.

Each hit needs its own frame: in 远离毒品，约炮吗 the frame excuses 毒品, not 约炮. Only the
small words named here may stand between a frame and the hit, so an advert cannot borrow a
frame from a phrase of its own: 远离贫穷赌博致富 and 不要错过六合彩 are refused.

Frames are looked up in sets, walking back from the hit over the small words and forward
from it over the gap, so a hit costs a few dozen lookups (an alternation of a few hundred
frames in one regular expression cost tens of microseconds a hit).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from anchor.moderation.wordlist import Context, ListedWord

# Kinds of personal data (personal/) that are a way to get in touch: a text that gives one is
# an advert as far as this rule goes.
CONTACT_KINDS = frozenset({"mobile", "phone", "email", "qq", "wechat"})

_MOST_BETWEEN = 3  # small words between a frame before the hit and the hit
_MOST_AFTER = 6  # characters between the hit and a frame after it
_MOST_BEFORE_QUESTION = 12  # characters between the hit and the question that ends the text
_REACH_BEFORE = 16  # characters before a hit that are read at all
_LONGEST_ITEM = 4  # characters of an item before the hit in an enumeration (废物、王八蛋)


class Stance(enum.Enum):
    """Where a frame puts the speaker."""

    OPPOSES = "opposes"  # 远离毒品, 赌博是违法的
    VICTIM = "victim"  # 遇到裸聊敲诈, 老板让我开假发票
    ASKS = "asks"  # 同事吸毒要不要报告
    QUOTES = "quotes"  # 他骂我傻逼


_OPPOSES = (
    "举报", "远离", "拒绝", "抵制", "防范", "谨防", "警惕", "打击", "严打", "禁止", "严禁",
    "杜绝", "反对", "戒掉", "戒除", "戒", "预防", "防止", "揭露", "曝光", "识破", "识别", "当心",
    "小心", "切勿", "请勿", "勿", "不能", "不得", "不准", "不许", "不碰", "不沾", "不参与",
    "告别", "摆脱", "整治", "取缔", "查处", "不要", "别",
)  # fmt: skip
_VICTIM = (
    "被", "被人", "遇到", "遇上", "碰到", "碰上", "遭遇", "遭到", "受到", "陷入", "深陷", "沉迷",
    "欠了", "欠下", "借了", "染上", "误入", "卷入", "受骗",
    *(
        verb + whom
        for verb in (
            "让", "逼", "要", "叫", "骗", "拉", "带", "劝", "诱导", "怂恿", "强迫", "要求", "推荐",
            "介绍", "威胁", "勒索", "敲诈",
        )
        for whom in ("我", "我们", "员工", "职工", "工人", "同事", "工友", "孩子")
    ),
)  # fmt: skip
# Asking whether something is the listed thing: 这算不算赌博, 是不是诈骗.
_ASKS_BEFORE = ("算不算", "是不是", "属不属于")
_QUOTES = (
    "骂", "骂人", "说我", "说他", "说她", "叫我", "喊我", "称我", "笑我", "侮辱", "辱骂",
)  # fmt: skip
# What may stand between a frame before the hit and the hit: who, where, how much, taking part.
_BETWEEN = frozenset({
    "我", "我们", "他", "她", "他们", "她们", "别人", "有人", "同事", "工友", "老板", "公司",
    "单位", "厂里", "领导", "主管", "组长", "老乡", "朋友", "家人", "室友", "亲戚", "老公",
    "老婆", "孩子", "员工", "职工", "工人", "大家", "青少年", "年轻人", "身边的", "网友", "客户",
    "在", "宿舍", "厂区", "车间", "工地", "群里", "工作群", "网上", "线上", "网络",
    "任何", "一切", "各类", "各种", "所有", "这种", "这类", "此类", "非法", "违法", "新型",
    "涉", "涉及", "参与", "参加", "碰", "沾", "沾染", "接触", "卷入", "从事", "搞", "玩", "去",
    "再", "开", "办", "买", "用", "吸", "看", "拍", "偷拍", "发", "做", "进行", "组织", "传播",
    "骗", "拉", "带", "陪", "逼", "诱导", "引诱", "强迫", "帮", "替", "给", "着", "了", "过",
    "进", "是", "成",
})  # fmt: skip
_ASKS = (
    "怎么办", "咋办", "怎么处理", "如何处理", "怎么应对", "如何应对", "违法吗", "犯法吗",
    "合法吗", "犯罪吗", "能告", "可以告", "告他", "起诉", "报警", "维权", "投诉", "举报", "报告",
    "求助", "找谁", "坐牢", "判刑", "判几年", "拘留", "处罚", "罚款", "被抓", "被骗", "被坑",
    "敲诈", "勒索", "开除", "辞退", "赔偿", "法律援助", "责任", "反映", "怎么戒", "戒掉", "戒毒",
    "戒赌", "防范", "避免", "算不算", "管不管", "能管",
)  # fmt: skip
_VICTIM_AFTER = ("输了", "输光", "输掉", "欠了", "欠下", "欠债")
_OPPOSES_AFTER = (
    "违法", "犯法", "犯罪", "危害", "害人", "坑人", "骗人", "骗局", "陷阱", "诈骗", "有害",
    "拒绝", "说不",
)  # fmt: skip

# A frame does not count after these characters: 要不要 asks, 特别 and 性别 are not 别, and
# 不拒绝 or 没举报 turn an opposing word round.
_NOT_AFTER = {
    "不要": "要",
    "别": "分特类区性级个差派鉴判辨识告",
    **{frame: "不没别勿" for frame in _OPPOSES if frame not in ("不要", "别")},
}
_NOT_BEFORE = {"怎么办": "理"}  # 怎么办理 is how to apply, not what to do
# Frames after the hit that only count at the end of a clause: 对毒品说不, not 说不会上瘾.
_CLAUSE_ENDS = frozenset({"说不"})
_PARTICLES = "吗呢吧啊"  # what may follow the question that ends the text
# What may join two listed words so that the second stands in the first one's frame:
# 警惕笑气和神仙水; nothing at all joins 卖淫嫖娼 and 淫秽色情 (a pause does not: 远离毒品，约炮).
_JOINS = frozenset({"", "和", "与", "及", "以及", "或", "或者", "跟", "还有"})
# Between the hit and a frame after it: a negation turns a verdict round (网赌不违法); one
# between a verb and itself (要不要, 是不是) only asks.
_NEGATION = re.compile("[不没非无未别]")
_A_NOT_A = re.compile(r"(.)[不没]\1")

# Offers and ways to get in touch, in the list format of wordlist.py.
_ADVERTS = (
    "~微信", "v信", "加v", "同号", "加我", "私聊", "私信", "私我", "联系", "扫码", "二维码",
    "进群", "加群", "入群", "群号", "链接", "网址", "点击", "来电", "致电", "上门", "同城",
    "出售", "出租", "收购", "代办", "代开", "专业", "包过", "包办", "稳赚", "稳赢", "包赢",
    "必中", "日赚", "躺赚", "日入", "月入", "日结", "价格", "价钱", "报价", "优惠", "特价",
    "便宜", "包邮", "货源", "现货", "有货", "到货", "批发", "量大", "从优", "彩金", "返水",
    "首充", "充值", "内幕", "内部资料", "一条龙", "高价", "秒到", "秒批", "下款", "招募",
    "接单", "带单", "保真", "渠道", "官网", "带你", "找我",
    "vx", "wx", "v", "qq", "tg", "dm", "telegram", "whatsapp", "wechat",
)  # fmt: skip


def _table(*groups: tuple[Iterable[str], Stance]) -> dict[str, Stance]:
    """Frame → stance; a frame in two groups keeps the first."""
    table: dict[str, Stance] = {}
    for frames, stance in groups:
        for frame in frames:
            table.setdefault(frame, stance)
    return table


_FRAMES_BEFORE = _table(
    (_OPPOSES, Stance.OPPOSES),
    (_VICTIM, Stance.VICTIM),
    (_ASKS_BEFORE, Stance.ASKS),
    (_QUOTES, Stance.QUOTES),
)
_QUOTES_BEFORE = _table((_QUOTES, Stance.QUOTES))
_FRAMES_AFTER = _table(
    (_ASKS, Stance.ASKS), (_VICTIM_AFTER, Stance.VICTIM), (_OPPOSES_AFTER, Stance.OPPOSES)
)
_QUESTIONS = _table((_ASKS, Stance.ASKS))


def _lengths(words: Iterable[str]) -> tuple[int, ...]:
    return tuple(sorted({len(word) for word in words}, reverse=True))


_BETWEEN_LENGTHS = _lengths(_BETWEEN)
_BEFORE_LENGTHS = _lengths(_FRAMES_BEFORE)
_AFTER_LENGTHS = _lengths(_FRAMES_AFTER)


@dataclass(frozen=True, slots=True)
class Excuse:
    """A listed word let through by the context rule, and the frame that did it."""

    word: str  # as written in the list
    frame: str  # the frame as it stands in the folded text: 远离, 让我, 怎么办
    stance: Stance

    def __str__(self) -> str:
        return f"{self.word} ({self.stance.value}: {self.frame})"


def advert_words() -> list[ListedWord]:
    """The advert words, to be compiled like a word list (so they are found however spelled)."""
    return [
        ListedWord(
            entry.lstrip("~"),
            exempt=False,
            where=f"{__name__}: adverts",
            by_homophone=entry.startswith("~"),
        )
        for entry in _ADVERTS
    ]


def frame(
    letters: str,
    pauses: Collection[int],
    first: int,
    last: int,
    context: Context,
    previous: tuple[int, int, Excuse] | None = None,
    enumerations: Collection[int] = (),
) -> tuple[str, Stance] | None:
    """The frame that makes the speaker the opposer, victim or asker of the hit at skeleton
    positions ``first``..``last`` (or quotes it, for an insult), if there is one.

    ``pauses``: where clauses end (textview.py), which a frame before the hit cannot cross;
    ``enumerations``: where an enumeration comma stands, which it can: the frame of the first
    item of a list (说我是废物、王八蛋) is the frame of the items after it. ``previous``: the
    first and last positions and the excuse of the last listed word that the rule let
    through; a hit that follows it, joined to it (警惕笑气和神仙水), stands in its frame.
    """
    if context is Context.NONE:
        return None
    quoted = context is Context.QUOTED
    frames = _QUOTES_BEFORE if quoted else _FRAMES_BEFORE
    low = max(0, first - _REACH_BEFORE)
    low = max((pause for pause in pauses if low < pause <= first), default=low)
    found = _before(letters, low, first, frames, _MOST_BETWEEN)
    if found is None and first in enumerations:
        items = range(first - 1, max(low, first - 1 - _LONGEST_ITEM), -1)
        found = next(
            filter(None, (_before(letters, low, end, frames, _MOST_BETWEEN) for end in items)), None
        )
    if found is not None:
        return found
    if previous is not None and _joined(letters, pauses, previous[0], previous[1], first):
        excuse = previous[2]
        if not quoted or excuse.stance is Stance.QUOTES:
            return excuse.frame, excuse.stance
    if quoted:
        return None
    return _after(letters, pauses, last + 1) or _ending_question(letters, last + 1)


def _before(
    letters: str, low: int, end: int, frames: Mapping[str, Stance], between: int
) -> tuple[str, Stance] | None:
    """A frame ending at ``end``, or before up to ``between`` small words that end there."""
    for size in _BEFORE_LENGTHS:
        start = end - size
        stance = frames.get(letters[start:end]) if start >= low else None
        if stance is not None and _stands(letters, start, end):
            return letters[start:end], stance
    if between:
        for size in _BETWEEN_LENGTHS:
            start = end - size
            if start >= low and letters[start:end] in _BETWEEN:
                found = _before(letters, low, start, frames, between - 1)
                if found is not None:
                    return found
    return None


def _after(letters: str, pauses: Collection[int], start: int) -> tuple[str, Stance] | None:
    """The nearest frame at most `_MOST_AFTER` characters after ``start``, if no negation
    stands between."""
    for at in range(start, min(len(letters), start + _MOST_AFTER + 1)):
        for size in _AFTER_LENGTHS:
            word = letters[at : at + size]
            stance = _FRAMES_AFTER.get(word) if len(word) == size else None
            if stance is None or not _stands(letters, at, at + size):
                continue
            if word in _CLAUSE_ENDS and not (at + size == len(letters) or at + size in pauses):
                continue
            return (word, stance) if _affirmed(letters[start:at]) else None
    return None


def _ending_question(letters: str, start: int) -> tuple[str, Stance] | None:
    """The question that ends the text, at most `_MOST_BEFORE_QUESTION` characters after
    ``start``, if no negation stands between."""
    ends = [len(letters)]
    if letters.endswith(tuple(_PARTICLES)):
        ends.append(len(letters) - 1)
    for end in ends:
        for size in _AFTER_LENGTHS:
            at = end - size
            if not start <= at <= start + _MOST_BEFORE_QUESTION:
                continue
            stance = _QUESTIONS.get(letters[at:end])
            if stance is not None and _stands(letters, at, end) and _affirmed(letters[start:at]):
                return letters[at:end], stance
    return None


def _stands(letters: str, start: int, end: int) -> bool:
    """The frame ``letters[start:end]`` is not part of a word that means something else."""
    word = letters[start:end]
    before = _NOT_AFTER.get(word)
    after = _NOT_BEFORE.get(word)
    return not (
        (before and start and letters[start - 1] in before)
        or (after and end < len(letters) and letters[end] in after)
    )


def _affirmed(gap: str) -> bool:
    """No negation in ``gap`` but in a question of a verb and itself (要不要)."""
    return _NEGATION.search(_A_NOT_A.sub("", gap)) is None


def _joined(
    letters: str, pauses: Collection[int], previous_first: int, previous_last: int, first: int
) -> bool:
    """The listed word at ``previous_first``..``previous_last`` and the one starting at
    ``first``, after it, overlap, touch, or stand on either side of a conjunction, in one
    clause. A word before it is not joined to it: "du bo 远离毒品" excuses no 赌博."""
    if first < previous_first:
        return False
    if first <= previous_last:
        return True
    if any(previous_last < pause <= first for pause in pauses):
        return False
    return letters[previous_last + 1 : first] in _JOINS
