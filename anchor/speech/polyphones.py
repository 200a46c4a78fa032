"""Words whose characters are read differently from how the characters read alone.

A Chinese character can have several readings (银行 is yín háng, 行为 is xíng wéi), and a
speech front-end that reads character by character picks one: espeak-ng 1.51's Mandarin voice
reads 行 as xíng everywhere, so the show's 银行 aired as "yín xíng". `POLYPHONES` is the table
of the words this host says that such a reader gets wrong, each with its tone-numbered pinyin
(5 for the neutral tone, v for ü). It is data on purpose: a neural voice's front-end can take
it as a word → pinyin override, and espeak-ng uses it through `respell_for_espeak`.

espeak-ng has no per-call lexicon, so the fix for it is a homophone: the misread character is
swapped for one that espeak-ng reads only one way, with the same syllable and tone (银行 →
银杭). The sound is right for any reader, the written word is not, so the respelled text is
for the voice's ears only, never for captions. `ESPEAK_READS` records what espeak-ng reads
each polyphonic character as when it has no better idea; a character is only swapped where
the word wants a different syllable, so a word espeak-ng already gets right is left alone.
The table is checked against the real espeak-ng by tests/test_speech_normalisation.py.
"""

from __future__ import annotations

import re

POLYPHONES: dict[str, str] = {
    # 行 háng (espeak-ng: xíng)
    "银行": "yin2 hang2",
    "行业": "hang2 ye4",
    "行长": "hang2 zhang3",
    "行情": "hang2 qing2",
    "各行各业": "ge4 hang2 ge4 ye4",
    # 重 chóng (espeak-ng: zhòng)
    "重新": "chong2 xin1",
    "重复": "chong2 fu4",
    "重申": "chong2 shen1",
    "重建": "chong2 jian4",
    "重组": "chong2 zu3",
    "重置": "chong2 zhi4",
    "重签": "chong2 qian1",
    "重填": "chong2 tian2",
    "重办": "chong2 ban4",
    "重阳": "chong2 yang2",
    "重庆": "chong2 qing4",
    # 还 huán (espeak-ng: hái)
    "还款": "huan2 kuan3",
    "还贷": "huan2 dai4",
    "还钱": "huan2 qian2",
    "还清": "huan2 qing1",
    "归还": "gui1 huan2",
    "偿还": "chang2 huan2",
    "退还": "tui4 huan2",
    "返还": "fan3 huan2",
    # 长 zhǎng (espeak-ng: cháng)
    "会长": "hui4 zhang3",
    "家长": "jia1 zhang3",
    "校长": "xiao4 zhang3",
    "院长": "yuan4 zhang3",
    "局长": "ju2 zhang3",
    "部长": "bu4 zhang3",
    "厂长": "chang3 zhang3",
    "组长": "zu3 zhang3",
    "班长": "ban1 zhang3",
    "队长": "dui4 zhang3",
    "科长": "ke1 zhang3",
    "处长": "chu4 zhang3",
    "站长": "zhan4 zhang3",
    "所长": "suo3 zhang3",
    "市长": "shi4 zhang3",
    "董事长": "dong3 shi4 zhang3",
    "增长": "zeng1 zhang3",
    "成长": "cheng2 zhang3",
    "生长": "sheng1 zhang3",
    "长大": "zhang3 da4",
    # 为 wéi (espeak-ng: wèi, which 因为 and 为了 want)
    "行为": "xing2 wei2",
    "作为": "zuo4 wei2",
    "认为": "ren4 wei2",
    "成为": "cheng2 wei2",
    "视为": "shi4 wei2",
    "称为": "cheng1 wei2",
    "以为": "yi3 wei2",
    "可以为": "ke3 yi3 wei4",  # "can do for ...": keeps 以为 from matching inside it
    "为准": "wei2 zhun3",
    "为止": "wei2 zhi3",
    "为主": "wei2 zhu3",
    "为期": "wei2 qi1",
    "分为": "fen1 wei2",
    "改为": "gai3 wei2",
    "变为": "bian4 wei2",
    "定为": "ding4 wei2",
    "列为": "lie4 wei2",
    "评为": "ping2 wei2",
    "均为": "jun1 wei2",
    "较为": "jiao4 wei2",
    "更为": "geng4 wei2",
    "极为": "ji2 wei2",
    "最为": "zui4 wei2",
    # 的 dí / dì / dī (espeak-ng: de)
    "的确": "di2 que4",
    "目的": "mu4 di4",
    "的士": "di1 shi4",
    # 得 dé (espeak-ng: de)
    "得到": "de2 dao4",
    "获得": "huo4 de2",
    "取得": "qu3 de2",
    "赢得": "ying2 de2",
    "所得": "suo3 de2",
    "应得": "ying1 de2",
    "难得": "nan2 de2",
    "心得": "xin1 de2",
    "得分": "de2 fen1",
    "得以": "de2 yi3",
    "不得": "bu4 de2",
    # 了 liǎo (espeak-ng: le)
    "了解": "liao3 jie3",
    "了不起": "liao3 bu5 qi3",
    "受不了": "shou4 bu5 liao3",
    # 假 jià (espeak-ng: jiǎ)
    "请假": "qing3 jia4",
    "休假": "xiu1 jia4",
    "放假": "fang4 jia4",
    "假期": "jia4 qi1",
    "年假": "nian2 jia4",
    "病假": "bing4 jia4",
    "事假": "shi4 jia4",
    "产假": "chan3 jia4",
    "婚假": "hun1 jia4",
    "丧假": "sang1 jia4",
    "探亲假": "tan4 qin1 jia4",
    "节假日": "jie2 jia4 ri4",
    "暑假": "shu3 jia4",
    "寒假": "han2 jia4",
    # 更 gēng (espeak-ng: gèng)
    "变更": "bian4 geng1",
    "更换": "geng1 huan4",
    "更新": "geng1 xin1",
    "更改": "geng1 gai3",
    "更正": "geng1 zheng4",
    # 给 jǐ (espeak-ng: gěi)
    "给予": "ji3 yu3",
    "供给": "gong1 ji3",
    # 应 yìng (espeak-ng: yīng)
    "相应": "xiang1 ying4",
    "应聘": "ying4 pin4",
    "供应": "gong1 ying4",
    "应急": "ying4 ji2",
    "适应": "shi4 ying4",
    "反应": "fan3 ying4",
    "响应": "xiang3 ying4",
    "回应": "hui2 ying4",
    "对应": "dui4 ying4",
    "应对": "ying4 dui4",
    "应用": "ying4 yong4",
    # 调 tiáo (espeak-ng: diào)
    "调解": "tiao2 jie3",
    "调整": "tiao2 zheng3",
    "调休": "tiao2 xiu1",
    "调节": "tiao2 jie2",
    "协调": "xie2 tiao2",
    "空调": "kong1 tiao2",
    # 处 chǔ (espeak-ng: chù)
    "处理": "chu3 li3",
    "处罚": "chu3 fa2",
    "处分": "chu3 fen4",
    "处置": "chu3 zhi4",
    "处于": "chu3 yu2",
    "相处": "xiang1 chu3",
    # 当 dàng (espeak-ng: dāng)
    "适当": "shi4 dang4",
    "恰当": "qia4 dang4",
    "妥当": "tuo3 dang4",
    "上当": "shang4 dang4",
    "当作": "dang4 zuo4",
    # 差 chā / chāi (espeak-ng: chà)
    "差额": "cha1 e2",
    "差异": "cha1 yi4",
    "差别": "cha1 bie2",
    "误差": "wu4 cha1",
    "出差": "chu1 chai1",
    "差旅": "chai1 lv3",
    # one-off readings espeak-ng misses
    "会计": "kuai4 ji4",
    "中暑": "zhong4 shu3",
    "下载": "xia4 zai3",
    "空闲": "kong4 xian2",
    "有空": "you3 kong4",
    "强迫": "qiang3 po4",
    "便宜": "pian2 yi5",
    "音乐": "yin1 yue4",
    "少年": "shao4 nian2",
    "青少年": "qing1 shao4 nian2",
    "几乎": "ji1 hu1",
}

# What espeak-ng 1.51 (cmn, cmn-latn-pinyin) reads each polyphonic character of the table as.
ESPEAK_READS: dict[str, str] = {
    "行": "xing2",
    "重": "zhong4",
    "还": "hai2",
    "长": "chang2",
    "为": "wei4",
    "的": "de5",
    "得": "de5",
    "了": "le5",
    "假": "jia3",
    "更": "geng4",
    "给": "gei3",
    "应": "ying1",
    "调": "diao4",
    "处": "chu4",
    "当": "dang1",
    "差": "cha4",
    "会": "hui4",
    "中": "zhong1",
    "载": "zai4",
    "空": "kong1",
    "强": "qiang2",
    "便": "bian4",
    "乐": "le4",
    "少": "shao3",
    "几": "ji3",
}

# A character espeak-ng reads as exactly this syllable, to stand in for a misread one.
ESPEAK_HOMOPHONES: dict[str, str] = {
    "hang2": "杭",
    "chong2": "虫",
    "huan2": "环",
    "zhang3": "掌",
    "wei2": "围",
    "di2": "敌",
    "di4": "帝",
    "di1": "低",
    "de2": "德",
    "liao3": "瞭",
    "jia4": "架",
    "geng1": "耕",
    "ji3": "挤",
    "ying4": "硬",
    "tiao2": "条",
    "chu3": "储",
    "dang4": "档",
    "cha1": "插",
    "chai1": "拆",
    "kuai4": "快",
    "zhong4": "众",
    "zai3": "宰",
    "kong4": "控",
    "qiang3": "抢",
    "pian2": "骈",
    "yue4": "月",
    "shao4": "哨",
    "ji1": "机",
}


def espeak_spelling(word: str, pinyin: str) -> str:
    """`word` with each character espeak-ng would misread swapped for a homophone."""
    syllables = pinyin.split()
    if len(syllables) != len(word):
        raise ValueError(f"{word!r} has {len(word)} characters but pinyin {pinyin!r}")
    spelled = []
    for char, syllable in zip(word, syllables, strict=True):
        misread = char in ESPEAK_READS and ESPEAK_READS[char] != syllable
        spelled.append(ESPEAK_HOMOPHONES[syllable] if misread else char)
    return "".join(spelled)


_ESPEAK_SPELLINGS = {word: espeak_spelling(word, pinyin) for word, pinyin in POLYPHONES.items()}
# Longest first, so 可以为 wins over 以为 and 董事长 over 事长; at one position the regex
# takes the leftmost word, so in 银行为 it is 银行 that is read, and 为 keeps espeak's wèi.
_WORDS = re.compile("|".join(re.escape(word) for word in sorted(POLYPHONES, key=len, reverse=True)))


def respell_for_espeak(text: str) -> str:
    """`text` with every table word spelled the way espeak-ng reads correctly.

    The swapped-in homophones are not words of the table, so respelling twice changes
    nothing more.
    """
    return _WORDS.sub(lambda m: _ESPEAK_SPELLINGS[m.group(0)], text)
