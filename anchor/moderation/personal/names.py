"""A viewer's own name, where they introduce themselves: "我叫张三", "本人李四", "我是王小明，…".

A name is masked only after such a cue, only when it starts with a common surname (or a
two-character one, 欧阳, 司徒, …), and only when it ends where a name can end: at punctuation,
a space, the end, or a word that usually follows a name (想, 问, 在, 今年, 的, …). Nicknames
(小王, 老李, 阿明) and titles (李师傅, 陈哥) say too little to find anyone and stay. So do the
many things a viewer *is* that start like a name: "我是江门的", "我是黄埔区的" (places),
"我是高中毕业", "本人银行卡", "我是程序员".
"""

from __future__ import annotations

import re

from anchor.moderation.personal.text import CJK, Span

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
    "苏魏吕丁沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵钱严覃武戴莫孔汤温冼麦岑邝伍柯骆甘赖庄聂翁阮欧关包萧"
)
_COMPOUND_SURNAMES = "欧阳|司徒|司马|诸葛|上官|东方|夏侯|皇甫|令狐|慕容|公孙|端木|尉迟|长孙"
_CUE = (
    r"(?:我叫|我名叫|名叫|我的名字(?:是|叫)|名字(?:是|叫)|本人(?:是|叫|姓名)?|我是|"
    r"姓名(?:是|为)?|真名(?:是|叫)?|联系人(?:是|为)?|收件人(?:是|为)?|叫我"
    r"|(?:他|她|老婆|老公|丈夫|妻子|爱人|孩子|儿子|女儿|工友|老板)(?:名字)?叫)[\s:：]*"
)
_START = re.compile(rf"{_CUE}(?=(?:{_COMPOUND_SURNAMES}|[{_SURNAMES}]))")
_COMPOUND = re.compile(_COMPOUND_SURNAMES)
_HAN = re.compile(f"[{CJK}]")
# Characters a given name does not contain: particles and words that end the introduction.
_NOT_IN_NAME = set("的了是在和也就都很吗呢吧啊么个们这那人想问请要能会有没被跟从到去来说")
_AFTER_NAME = re.compile(
    r"想|问|请|在|是|的|今年|来自|家住|住在|从|工作|上班|打工|做|电话|手机|身份证|联系|微信|男|女"
    r"|现在|目前|今天|明天|昨天|去年|平时|一直|被|和|跟|要|能|可以|有|没|已经|老家|也|就|刚|岁"
    r"|啊|呀|哈|呢|吧|了|谢谢|感谢|你好|您好"
)
_PLACE_ENDS = set("州门市区县镇乡村圳莞")  # 江门, 黄埔区, 石龙镇: where a viewer is from
_TITLES = {"师傅", "老师", "经理", "主任", "阿姨", "大哥", "大姐", "先生", "女士", "小姐"}
_TITLES.update("哥姐总工叔姨伯")  # 李师傅, 陈哥: what workmates call anyone
_NOT_NAME_WORDS = (
    "马上 高中 高三 高二 高一 高管 高层 高手 高兴 白班 白天 白领 方便 毛病 许多 万一 任何 江湖 "
    "程序 程序员 司机 黄牛 钟点工 孙子 龙头 金牌 金融 史上 常年 石头 叶子 韩国 韩国人 温州 苏州 "
    "陈述 林业 钱包 雷人 罗马 关于 关键 关心 夏天 夏季 付款 付费 余额 余下 曾经 范围 顾客 顾问 "
    "武汉 莫名 孔子 甘心 欧洲 欧美 江西 湖南 严重 严格 黎明 田里 包工头"
)
_NOT_NAMES = {*(f"周{day}" for day in "一二三四五六日天末"), *_NOT_NAME_WORDS.split()}


def find_names(folded: str) -> list[Span]:
    """Names that follow a self-introduction in ``folded``."""
    spans: list[Span] = []
    for cue in _START.finditer(folded):
        end = _name_end(folded, cue.end())
        if end is not None:
            spans.append(Span(cue.end(), end, "name"))
    return spans


def _name_end(folded: str, start: int) -> int | None:
    """Where the name starting at ``start`` ends, or None if no name starts there."""
    compound = _COMPOUND.match(folded, start)
    surname = len(compound.group()) if compound else 1
    for given in (1, 2):
        end = start + surname + given
        name = folded[start:end]
        if len(name) < surname + given or not all(_in_name(char) for char in name[surname:]):
            return None
        if _ends_here(folded, end) and not _not_a_name(name):
            return end
    return None


def _in_name(char: str) -> bool:
    return _HAN.match(char) is not None and char not in _NOT_IN_NAME


def _ends_here(folded: str, end: int) -> bool:
    return end >= len(folded) or not _in_name(folded[end]) or bool(_AFTER_NAME.match(folded, end))


def _not_a_name(name: str) -> bool:
    given = name[2:] if _COMPOUND.match(name) else name[1:]
    return name in _NOT_NAMES or name[-1] in _PLACE_ENDS or given in _TITLES
