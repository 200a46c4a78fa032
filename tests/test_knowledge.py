"""The knowledge base and its lexical lens: the shipped union FAQ (every entry with its
alternates) finds the right entry for questions typed the way viewers type them by words
alone, ignores questions about something else, and a broken file is reported with its file,
line and key. The calibrated retrievers built on it are tested in test_retrieval.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from anchor.answers.knowledge import Entry, KnowledgeBase, KnowledgeError
from anchor.speech.text import split_sentences

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "knowledge" / "union-faq.yaml"
# The raw lexical coverage (not the calibrated confidence of knowledge.min_score) a good
# match of the shipped FAQ reaches.
MIN_SCORE = 0.35

# Phrased the way viewers type, none of them written in the knowledge base.
PARAPHRASES = {
    "住院了互助金咋报": "mutual-aid-claim",
    "老板不发工资怎么办": "wage-arrears-what-to-do",
    "受伤了要多久内申请工伤": "work-injury-deadline",
    "外卖小哥能入工会吗": "join-new-employment-forms",
    "跑滴滴的可以加入工会么": "join-new-employment-forms",
    "互助金要交啥材料": "mutual-aid-materials",
    "互助金申请以后多长时间到账啊": "mutual-aid-payout-time",
    "有医保了还能报互助金吗": "mutual-aid-with-medical-insurance",
    "工资被拖了半年找谁投诉": "wage-arrears-complain",
    "欠薪的证据怎么留": "wage-arrears-evidence",
    "工会会费一个月交多少钱": "join-fee",
    "用手机怎么入会": "join-online",
    "干了半年老板都不跟我签合同": "contract-not-signed",
    "附近哪里有驿站可以歇脚": "station-find",
    "工会请律师收钱吗": "legal-aid-free",
    "周六加班工资咋算": "overtime-pay",
    "公司没给我买社保咋办": "social-insurance-basics",
    "怀孕被公司辞退了怎么办": "women-pregnancy-protection",
    "产假一共能休多少天": "women-maternity-leave",
    "12351是干嘛的": "hotline-12351",
    "下班骑车被撞了算工伤不": "work-injury-commute",
    "伤残鉴定怎么弄": "work-injury-disability-assessment",
    "辞职提前几天跟老板说": "contract-resign",
    "互助保障是个啥": "mutual-aid-what",
}

UNRELATED = ["今天天气怎么样", "推荐一部电影", "给我唱首歌吧", "明天股票会涨吗", "哈哈哈哈"]


@pytest.fixture(scope="module")
def union_faq() -> KnowledgeBase:
    return KnowledgeBase.load(SHIPPED)


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "faq.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(KnowledgeError) as caught:
        KnowledgeBase.load(path)
    return caught.value.errors


def test_the_shipped_faq_has_40_broadcast_length_entries(union_faq: KnowledgeBase) -> None:
    assert len(union_faq) >= 40
    assert union_faq.source == SHIPPED
    for entry in union_faq.entries:
        assert len(entry.answer) <= 120, entry.id
        assert 1 <= len(split_sentences(entry.answer)) <= 4, entry.id
        assert 2 <= len(entry.alternates) <= 4, entry.id


@pytest.mark.parametrize(("question", "expected"), PARAPHRASES.items())
def test_viewer_phrasings_find_the_right_entry(
    union_faq: KnowledgeBase, question: str, expected: str
) -> None:
    assert question not in union_faq.get(expected).phrasings
    hits = union_faq.search(question)
    assert hits, question
    assert hits[0].entry.id == expected, [(hit.entry.id, round(hit.score, 2)) for hit in hits]
    assert hits[0].score >= MIN_SCORE


@pytest.mark.parametrize("question", UNRELATED)
def test_questions_about_something_else_score_below_the_threshold(
    union_faq: KnowledgeBase, question: str
) -> None:
    assert all(hit.score < MIN_SCORE for hit in union_faq.search(question))


def test_english_questions_work(union_faq: KnowledgeBase) -> None:
    [hit] = union_faq.search("How can I join a trade union?", limit=1)
    assert hit.entry.id == "join-how" and hit.score >= MIN_SCORE
    assert union_faq.search("My employer has not paid my wages")[0].entry.id == (
        "wage-arrears-what-to-do"
    )
    assert union_faq.search("What's the weather like today?") == []


def test_scores_are_between_0_and_1_best_first_and_limited(union_faq: KnowledgeBase) -> None:
    hits = union_faq.search("互助保障理赔流程是什么", limit=5)
    assert len(hits) == 5
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < score <= 1 for score in scores)
    assert hits[0].entry.id == "mutual-aid-claim" and hits[0].score > 0.9
    assert union_faq.search("") == [] and union_faq.search("？！。") == []


def test_a_typo_still_finds_the_entry(union_faq: KnowledgeBase) -> None:
    hits = union_faq.search("工伤认定申清有时间限制吗")  # 申清 for 申请
    assert hits[0].entry.id == "work-injury-deadline" and hits[0].score >= MIN_SCORE


def test_entries_know_their_line_for_messages_to_staff(union_faq: KnowledgeBase) -> None:
    lines = SHIPPED.read_text(encoding="utf-8").splitlines()
    where = union_faq.where("hotline-12351")
    path, line = where.rsplit(":", 1)
    assert path == str(SHIPPED)
    assert lines[int(line) - 1].strip() == "- id: hotline-12351"
    assert KnowledgeBase([union_faq.get("hotline-12351")]).where("hotline-12351") == (
        "hotline-12351"
    )


def test_coverage_scores_every_entry_in_order(union_faq: KnowledgeBase) -> None:
    coverage = union_faq.coverage("互助保障理赔流程是什么")
    assert len(coverage) == len(union_faq)
    best = union_faq.search("互助保障理赔流程是什么", limit=1)[0]
    assert coverage[union_faq.entries.index(best.entry)] == pytest.approx(best.score)
    assert max(coverage) == pytest.approx(best.score)


def test_a_knowledge_base_built_in_code() -> None:
    kb = KnowledgeBase(
        [
            Entry(id="hotline", question="热线电话是多少", answer="请拨打12351。"),
            Entry(id="station", question="驿站在哪里", answer="地图上搜工会驿站。"),
        ]
    )
    assert kb.search("热线多少")[0].entry.id == "hotline"
    with pytest.raises(ValueError, match="unique"):
        KnowledgeBase([kb.get("hotline"), kb.get("hotline")])


async def test_aload_loads_in_a_thread() -> None:
    kb = await KnowledgeBase.aload(SHIPPED)
    assert kb.search("住院了怎么报销互助金")[0].entry.id == "mutual-aid-claim"


def test_jieba_start_up_goes_to_our_logger_not_the_terminal() -> None:
    script = f"""
import json, logging
seen = []
class Keep(logging.Handler):
    def emit(self, record):
        seen.append(record.getMessage())
logging.getLogger("anchor").addHandler(Keep())
logging.getLogger("anchor").setLevel(logging.DEBUG)
from anchor.answers.knowledge import KnowledgeBase
KnowledgeBase.load({str(SHIPPED)!r})
print(json.dumps(seen))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert any("prefix dict" in message for message in json.loads(result.stdout))


ENTRY = """\
  - id: {id}
    question: {question}
    answer: {answer}
"""


def test_broken_files_name_file_line_and_key(tmp_path: Path) -> None:
    text = (
        "entries:\n"
        + ENTRY.format(id="wages", question="欠薪怎么办", answer="先保存证据。")
        + ENTRY.format(id="wages", question="工伤怎么认定", answer="30日内申请。")
        + ENTRY.format(id="empty", question="会费多少", answer='""')
        + "  - id: no-answer\n    question: 驿站在哪\n"
        + "  - id: bad-types\n    question: 热线\n    answer: 12351。\n    alternates: {a: b}\n"
        + "  - id: Bad Id\n    question: 欠薪怎么办\n    answer: 好。\n    tag: [x]\n"
    )
    path = write(tmp_path, text)
    assert errors_of(path) == [
        f"{path}:5: entries.1.id: duplicate id 'wages' (already used by entries.0)",
        f"{path}:10: entries.2.answer: must not be empty",
        f"{path}:11: entries.3.answer: required key is missing",
        f"{path}:16: entries.4.alternates: expected a list, got a mapping",
        f"{path}:17: entries.5.id: 'Bad Id' is not a valid id: use lowercase letters,"
        " digits, - or _",
        f"{path}:18: entries.5.question: '欠薪怎么办' is already a question of entry 'wages'",
        f"{path}:20: entries.5.tag: unknown key (did you mean 'tags'?)",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"entries:\n  - id: a\n    question: \xe6\xac\xa0\xff\n", ":3: not valid UTF-8"),
        ("", ":1: the file is empty"),
        ("entries: []\n", ":1: entries: must not be empty"),
        ("entries:\n  - id: a\n\tquestion: x\n", ":3: YAML syntax error"),
        ("faq:\n  - id: a\n", ":1: entries: required key is missing"),
    ],
)
def test_unreadable_files_are_reported_with_a_line(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    path = write(tmp_path, content)
    errors = errors_of(path)
    assert any(error.startswith(str(path)) and expected in error for error in errors), errors


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    assert errors_of(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: file not found"]
