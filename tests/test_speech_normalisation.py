"""Chinese written as it is said, and what espeak-ng really says for it.

The sentences in data/speech_normalisation.tsv are the kind a union host reads all day
(claims, hotlines, office hours, the Labour Contract Law, acronyms, polyphones). The espeak-ng
tests run the real engine with the Mandarin voice the offline profile uses
(cmn-latn-pinyin; plain `cmn` in 1.51 reads its own pinyin as English) and compare its
phonemes with those it gives for the tone-numbered pinyin of the word, which that voice
reads exactly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from anchor.speech.polyphones import (
    ESPEAK_HOMOPHONES,
    ESPEAK_READS,
    POLYPHONES,
    espeak_spelling,
    respell_for_espeak,
)
from anchor.speech.text import normalize_for_speech
from anchor.speech.zh_normalise import cardinal

DATA = Path(__file__).parent / "data" / "speech_normalisation.tsv"
MANDARIN = "cmn-latn-pinyin"


def _rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        written, spoken, for_espeak = (line.split("\t") + [""])[:3]
        rows.append((written, spoken, for_espeak or spoken))
    return rows


ROWS = _rows()


def test_the_sentence_list_is_big_enough_to_mean_something():
    assert len(ROWS) >= 60


@pytest.mark.parametrize(("written", "spoken", "for_espeak"), ROWS, ids=[r[0][:12] for r in ROWS])
def test_a_union_host_sentence_is_written_as_it_is_said(written, spoken, for_espeak):
    assert normalize_for_speech(written, "zh", respell_polyphones=False) == spoken
    assert normalize_for_speech(written, "zh") == for_espeak
    assert not re.search(r"[0-9%¥$]", for_espeak), "every number is in characters"


@pytest.mark.parametrize(("written", "spoken", "for_espeak"), ROWS, ids=[r[0][:12] for r in ROWS])
def test_normalising_twice_gives_what_once_gave(written, spoken, for_espeak):
    for respell in (False, True):
        once = normalize_for_speech(written, "zh", respell_polyphones=respell)
        assert normalize_for_speech(once, "zh", respell_polyphones=respell) == once


@pytest.mark.parametrize(
    ("number", "reading", "spoken"),
    [
        (0, "amount", "零"),
        (2, "amount", "二"),
        (2, "count", "两"),
        (10, "amount", "十"),
        (12, "count", "十二"),
        (20, "count", "二十"),
        (22, "count", "二十二"),
        (110, "amount", "一百一十"),
        (200, "count", "两百"),
        (200, "name", "二百"),
        (1005, "amount", "一千零五"),
        (1050, "amount", "一千零五十"),
        (1200, "count", "一千二百"),
        (2222, "count", "两千二百二十二"),
        (10050, "amount", "一万零五十"),
        (12000, "count", "一万两千"),
        (12000, "name", "一万二千"),
        (20000, "count", "两万"),
        (100000, "amount", "十万"),
        (100500, "amount", "十万零五百"),
        (150000, "amount", "十五万"),
        (1000500, "amount", "一百万零五百"),
        (20000000, "count", "两千万"),
        (100000000, "amount", "一亿"),
        (100005000, "amount", "一亿零五千"),
        (200000000, "count", "两亿"),
        (1000010000, "amount", "十亿零一万"),
    ],
)
def test_cardinal_numbers_follow_mandarin_usage(number, reading, spoken):
    assert cardinal(number, reading) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("2月2日", "二月二日"),
        ("2个月", "两个月"),
        ("2年", "两年"),
        ("2年级", "二年级"),
        ("2号线", "二号线"),
        ("百分之2", "百分之二"),
        ("2%", "百分之二"),
        ("2.5万", "二点五万"),
        ("2点", "两点"),
        ("2:02", "两点零二分"),
    ],
)
def test_two_is_liang_when_it_counts_and_er_when_it_names(written, spoken):
    assert normalize_for_speech(written, "zh") == spoken


def test_english_text_is_left_to_the_english_voice():
    text = "Call 12351 at 9:00, download the APP"
    assert normalize_for_speech(text, "en") == text


def test_every_table_word_has_one_syllable_per_character():
    for word, pinyin in POLYPHONES.items():
        assert len(pinyin.split()) == len(word), word
        assert all(re.fullmatch(r"[a-z]+[1-5]", s) for s in pinyin.split()), word


def test_respelling_touches_only_table_words_and_is_stable():
    text = "银行为职工办理还款，还是要重新了解行业规定。"
    once = respell_for_espeak(text)
    assert once == "银杭为职工办理环款，还是要虫新瞭解杭业规定。"
    assert respell_for_espeak(once) == once


# espeak-ng itself


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def phonemes(texts: list[str], voice: str = MANDARIN) -> list[list[str]]:
    """espeak-ng's phonemes for each text, one list of syllables each, stress marks dropped.

    All texts go through one espeak-ng run, one clause a line, to keep the test quick.
    """
    run = subprocess.run(
        ["espeak-ng", "-v", voice, "-q", "-x"],
        input="".join(f"{text}。\n" for text in texts),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) == len(texts), run.stdout
    return [
        [re.sub(r"[',]", "", syllable.strip()) for syllable in line.split("_|") if syllable.strip()]
        for line in lines
    ]


@needs_espeak
def test_espeak_reads_every_polyphone_word_right_after_normalisation():
    words = list(POLYPHONES)
    heard = phonemes([normalize_for_speech(word, "zh") for word in words])
    wanted = phonemes([POLYPHONES[word] for word in words])
    wrong = []
    for word, got, want in zip(words, heard, wanted, strict=True):
        polyphonic = [i for i, char in enumerate(word) if char in ESPEAK_READS]
        if len(got) != len(word) or any(got[i] != want[i] for i in polyphonic):
            wrong.append((word, POLYPHONES[word], got, want))
    assert not wrong


@needs_espeak
@pytest.mark.parametrize(
    ("word", "index", "syllable"),
    [
        ("银行", 1, "Xa35N"),  # háng, not xíng (S;i35N)
        ("行业", 0, "Xa35N"),
        ("重新", 0, "ts.hong35"),  # chóng, not zhòng
        ("重大疾病", 0, "ts.ong51"),  # zhòng: espeak-ng was right, left alone
        ("还款", 0, "Xua35n"),  # huán, not hái
        ("还是", 0, "Xai35"),  # hái: right, left alone
        ("工会会长", 3, "ts.a214N"),  # zhǎng, not cháng
        ("因为", 1, "wei51"),  # wèi: right, left alone
        ("为了", 0, "wei51"),
        ("行为", 1, "wei35"),  # wéi
        ("的确", 0, "ti35"),  # dí, not de
        ("得到", 0, "t@35"),  # dé, not de
        ("觉得", 1, "t@33"),  # neutral de: right, left alone
    ],
)
def test_espeak_reading_of_the_usual_polyphones(word, index, syllable):
    [heard] = phonemes([normalize_for_speech(word, "zh")])
    assert heard[index] == syllable, heard


@needs_espeak
def test_espeak_reads_the_polyphonic_characters_as_the_table_says():
    """`ESPEAK_READS` is what espeak-ng does with the character alone: if an upgrade changes
    that, the respelling table needs a look."""
    chars = list(ESPEAK_READS)
    assert phonemes(chars) == phonemes([ESPEAK_READS[char] for char in chars])


@needs_espeak
def test_espeak_reads_each_homophone_as_its_syllable():
    syllables = list(ESPEAK_HOMOPHONES)
    assert phonemes([ESPEAK_HOMOPHONES[s] for s in syllables]) == phonemes(syllables)


@needs_espeak
def test_espeak_mispronounces_the_table_words_without_respelling():
    """Every entry fixes something (可以为 only guards 以为 from matching inside it)."""
    words = [word for word in POLYPHONES if espeak_spelling(word, POLYPHONES[word]) != word]
    assert set(POLYPHONES) - set(words) == {"可以为"}
    plain = phonemes(words)
    wanted = phonemes([POLYPHONES[word] for word in words])
    assert all(got != want for got, want in zip(plain, wanted, strict=True))


@needs_espeak
@pytest.mark.parametrize(
    ("written", "letters"),
    [
        ("用OBS直播", ["ou55", "pi51", "ai35s"]),
        ("下载APP", ["ei51", "phi51", "phi51"]),
        ("HR部门", ["ei35ts.h", "@r35"]),
        ("你的ID号", ["ai51", "ti51"]),
    ],
)
def test_espeak_spells_acronyms_with_chinese_letter_names(written, letters):
    """A run of capitals is read as an English word ("OBS" → "obz"); spaced, each capital
    gets the Mandarin voice's letter name and no switch to the English voice."""
    [raw] = phonemes([written])
    assert not set(letters) <= set(raw)
    [heard] = phonemes([normalize_for_speech(written, "zh")])
    assert all(letter in heard for letter in letters), heard
    assert not any("(en)" in syllable for syllable in heard), heard


@needs_espeak
def test_espeak_says_yao_in_a_hotline_and_the_amount_in_chinese():
    [hotline, amount] = phonemes(
        [normalize_for_speech("拨打12351", "zh"), normalize_for_speech("12000元", "zh")]
    )
    assert hotline[2:] == ["jAu55", "@r51", "sa55n", "wu21", "jAu55"]
    assert amount == ["ji55", "wA51n", "liA21N", "tS;hiE55n", "y&35n"]


@needs_espeak
def test_plain_cmn_voice_also_hears_hang_in_yinhang():
    """espeak-ng 1.51's `cmn` voice reads its pinyin in English ("yin two xing two"), yet the
    respelled syllable is still háng there, not xíng."""
    [raw, heard] = phonemes(["银行", normalize_for_speech("银行", "zh")], voice="cmn")
    assert raw[1].startswith("zI") and heard[1].startswith("ha"), (raw, heard)
