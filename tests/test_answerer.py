"""Answers as the host would speak them: sentences from the knowledge base, or from a model
served over real HTTP on loopback, with a filler when it is slow and the knowledge-base
answer when it fails; the model never asked when retrieval refuses, and its sentences that
leave the topic or invent a number never aired."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from anchor.answers.answerer import Answer, AnswerChunk, Answerer, AnswerStream
from anchor.answers.grounding import GroundingGuard, numbers_in
from anchor.answers.knowledge import KnowledgeBase
from anchor.answers.llm import LlmClient
from anchor.answers.retrieval import RetrieverFactory
from anchor.config import KnowledgeConfig, LlmConfig
from anchor.harness.standins import OpenAiStub, Reply
from anchor.speech.text import split_sentences

ROOT = Path(__file__).resolve().parent.parent
FALLBACK = "这个问题我先记下来，工会的工作人员会尽快跟进。也可以拨打12351职工服务热线咨询。"
FILLER = "这个问题我查一下。"
QUESTION = "住院了互助金咋报"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load(ROOT / "knowledge" / "union-faq.yaml")


@pytest.fixture(scope="module")
def claim_sentences(kb: KnowledgeBase) -> list[str]:
    return split_sentences(kb.get("mutual-aid-claim").answer)


@asynccontextmanager
async def answerer_with_llm(
    kb: KnowledgeBase,
    stub: OpenAiStub,
    *,
    first_token_seconds: float = 2.0,
    total_seconds: float = 5.0,
    filler_after_seconds: float = 5.0,
) -> AsyncIterator[Answerer]:
    llm = LlmClient(
        stub.base_url,
        "qwen-test",
        None,
        first_token_seconds=first_token_seconds,
        total_seconds=total_seconds,
        max_tokens=200,
        temperature=0.3,
    )
    answerer = Answerer(
        kb,
        min_score=0.35,
        fallback_text=FALLBACK,
        llm=llm,
        filler=FILLER,
        filler_after_seconds=filler_after_seconds,
    )
    try:
        yield answerer
    finally:
        await answerer.aclose()


def kb_only(kb: KnowledgeBase) -> Answerer:
    return Answerer(
        kb, min_score=0.35, fallback_text=FALLBACK, filler=FILLER, filler_after_seconds=0.0
    )


async def read_all(stream: AnswerStream) -> list[AnswerChunk]:
    async with stream:
        return [chunk async for chunk in stream]


async def test_a_known_question_is_answered_from_the_knowledge_base_sentence_by_sentence(
    kb: KnowledgeBase, claim_sentences: list[str]
) -> None:
    answerer = kb_only(kb)
    stream = answerer.stream(QUESTION)
    with pytest.raises(RuntimeError):
        _ = stream.answer
    chunks = await read_all(stream)
    assert chunks == [AnswerChunk(sentence) for sentence in claim_sentences]
    answer = stream.answer
    assert (answer.source, answer.id, answer.question) == ("kb", "mutual-aid-claim", QUESTION)
    assert answer.answer == kb.get("mutual-aid-claim").answer
    assert answer.score >= 0.35
    assert await answerer.answer(QUESTION) == answer


async def test_an_unknown_question_gets_the_fallback_and_json_has_the_contract_keys(
    kb: KnowledgeBase,
) -> None:
    answerer = kb_only(kb)
    chunks = await read_all(answerer.stream("推荐一部电影"))
    assert [chunk.text for chunk in chunks] == split_sentences(FALLBACK)
    answer = await answerer.answer("推荐一部电影")
    assert (answer.source, answer.id, answer.answer) == ("fallback", None, FALLBACK)
    payload = json.loads(json.dumps(answer.to_json(), ensure_ascii=False))
    assert list(payload) == ["id", "answer", "score", "source"]
    assert (payload["id"], payload["answer"], payload["source"]) == (None, FALLBACK, "fallback")
    assert 0 <= payload["score"] < 0.35
    assert (await answerer.answer("   ")).source == "fallback"


async def test_the_llm_answer_is_spoken_while_the_model_is_still_writing(
    kb: KnowledgeBase,
) -> None:
    hold = asyncio.Event()
    deltas = ["出院后", "把材料交给单位工会就行。", "审核通过后", "，互助金会打到您的银行卡。"]
    async with (
        OpenAiStub(Reply(deltas=deltas, hold=hold, hold_after=3)) as stub,
        answerer_with_llm(kb, stub) as answerer,
        answerer.stream(QUESTION) as stream,
    ):
        first = await anext(stream)
        hold.set()
        rest = [chunk async for chunk in stream]
    assert first == AnswerChunk("出院后把材料交给单位工会就行。")
    assert rest == [AnswerChunk("审核通过后，互助金会打到您的银行卡。")]
    assert stream.answer == Answer(
        QUESTION,
        "出院后把材料交给单位工会就行。审核通过后，互助金会打到您的银行卡。",
        "llm",
        "mutual-aid-claim",
        stream.answer.score,
    )
    system, user = stub.requests[0].body["messages"]
    assert system["role"] == "system" and "Simplified Chinese" in system["content"]
    assert "only from the knowledge-base entries" in system["content"]
    assert kb.get("mutual-aid-claim").answer in user["content"]
    assert QUESTION in user["content"]


async def test_a_slow_model_gets_a_filler_then_the_knowledge_base_answer(
    kb: KnowledgeBase, claim_sentences: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        OpenAiStub(Reply(deltas=["太慢了。"], first_delay=5)) as stub,
        answerer_with_llm(kb, stub, first_token_seconds=0.4, filler_after_seconds=0.05) as answerer,
    ):
        stream = answerer.stream(QUESTION)
        chunks = await read_all(stream)
        await stub.client_hung_up()
    assert chunks[0] == AnswerChunk(FILLER, filler=True)
    assert chunks[1:] == [AnswerChunk(sentence) for sentence in claim_sentences]
    assert (stream.answer.source, stream.answer.id) == ("kb", "mutual-aid-claim")
    assert "too slow" in caplog.text and "answering from the knowledge base" in caplog.text


async def test_complete_answers_never_contain_the_filler(kb: KnowledgeBase) -> None:
    async with (
        OpenAiStub(Reply(deltas=["太慢了。"], first_delay=5)) as stub,
        answerer_with_llm(kb, stub, first_token_seconds=0.3, filler_after_seconds=0.0) as answerer,
    ):
        answer = await answerer.answer(QUESTION)
    assert answer.source == "kb"
    assert answer.answer == kb.get("mutual-aid-claim").answer


async def test_a_model_stalling_mid_answer_ends_with_what_was_said(
    kb: KnowledgeBase, caplog: pytest.LogCaptureFixture
) -> None:
    reply = Reply(deltas=["出院后把材料交给单位工会。", "审核通过后", "再到账。"], stall_after=2)
    async with (
        OpenAiStub(reply) as stub,
        answerer_with_llm(kb, stub, first_token_seconds=0.4, total_seconds=0.6) as answerer,
    ):
        stream = answerer.stream(QUESTION)
        chunks = await read_all(stream)
    assert chunks == [AnswerChunk("出院后把材料交给单位工会。")]
    assert (stream.answer.source, stream.answer.answer) == ("llm", "出院后把材料交给单位工会。")
    assert "ending the answer early" in caplog.text


async def test_a_failing_model_falls_back_and_its_message_is_logged_verbatim(
    kb: KnowledgeBase, claim_sentences: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    message = "CUDA error: out of memory（显存不足）"
    reply = Reply(status=500, error={"error": {"message": message}})
    async with OpenAiStub(reply) as stub, answerer_with_llm(kb, stub) as answerer:
        stream = answerer.stream(QUESTION)
        chunks = await read_all(stream)
    assert chunks == [AnswerChunk(sentence) for sentence in claim_sentences]
    assert stream.answer.source == "kb"
    assert f"HTTP 500: {message}" in caplog.text


async def test_after_a_failure_the_model_is_left_alone_for_a_while(
    kb: KnowledgeBase, caplog: pytest.LogCaptureFixture
) -> None:
    reply = Reply(status=401, error={"error": {"message": "Invalid API key"}})
    async with OpenAiStub(reply) as stub, answerer_with_llm(kb, stub) as answerer:
        first = await answerer.answer(QUESTION)
        second = await answerer.answer("老板不发工资怎么办")
    assert (first.source, second.source) == ("kb", "kb")
    assert second.id == "wage-arrears-what-to-do"
    assert len(stub.requests) == 1
    assert "HTTP 401: Invalid API key" in caplog.text


async def test_leaving_an_answer_early_closes_the_models_connection(kb: KnowledgeBase) -> None:
    never = asyncio.Event()
    reply = Reply(deltas=["第一句。", "第二句。", "第三句。"], hold=never, hold_after=2)
    async with OpenAiStub(reply) as stub, answerer_with_llm(kb, stub, total_seconds=30) as answerer:
        async with answerer.stream(QUESTION) as stream:
            assert await anext(stream) == AnswerChunk("第一句。")
        await stub.client_hung_up()
    assert stub.hangups == 1


async def test_english_questions_get_english_answers_without_markdown(kb: KnowledgeBase) -> None:
    deltas = ["**You can join** ", "through your workplace union.\n", "- Or apply ", "online."]
    async with OpenAiStub(Reply(deltas=deltas)) as stub, answerer_with_llm(kb, stub) as answerer:
        stream = answerer.stream("How can I join a trade union?")
        chunks = await read_all(stream)
    assert [chunk.text for chunk in chunks] == [
        "You can join through your workplace union.",
        "Or apply online.",
    ]
    assert stream.answer.answer == "You can join through your workplace union. Or apply online."
    assert (stream.answer.source, stream.answer.id) == ("llm", "join-how")
    assert "Answer in English." in stub.requests[0].body["messages"][0]["content"]


async def test_a_model_that_says_nothing_is_replaced_by_the_knowledge_base(
    kb: KnowledgeBase, claim_sentences: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    async with OpenAiStub(Reply(deltas=[])) as stub, answerer_with_llm(kb, stub) as answerer:
        answer = await answerer.answer(QUESTION)
    assert (answer.source, answer.answer) == ("kb", kb.get("mutual-aid-claim").answer)
    assert "no text" in caplog.text


async def test_a_host_slower_than_the_deadline_still_gets_the_whole_answer(
    kb: KnowledgeBase,
) -> None:
    deltas = ["出院后交材料。", "单位工会统一报送。", "审核后到账。"]
    async with (
        OpenAiStub(Reply(deltas=deltas, gap=0.1)) as stub,
        answerer_with_llm(kb, stub, first_token_seconds=0.5, total_seconds=0.8) as answerer,
        answerer.stream(QUESTION) as stream,
    ):
        chunks = [await anext(stream)]
        await asyncio.sleep(1.0)  # the host is still saying the first sentence
        chunks += [chunk async for chunk in stream]
    assert [chunk.text for chunk in chunks] == deltas
    assert stream.answer.source == "llm"


async def test_built_from_config_it_uses_the_model_only_when_enabled(kb: KnowledgeBase) -> None:
    async with OpenAiStub(Reply(deltas=["您好，出院后申请就行。"])) as stub:
        enabled = LlmConfig(enabled=True, base_url=stub.base_url, filler_after_seconds=5)
        for llm_config, source in ((LlmConfig(base_url=stub.base_url), "kb"), (enabled, "llm")):
            answerer = Answerer.from_config(kb, KnowledgeConfig(), llm_config)
            try:
                assert (await answerer.answer(QUESTION)).source == source
            finally:
                await answerer.aclose()
    assert len(stub.requests) == 1


# --- The model only phrases what retrieval found, and only what the entries say ---------


async def test_a_question_retrieval_refuses_never_reaches_the_model(kb: KnowledgeBase) -> None:
    async with OpenAiStub(Reply(deltas=["我来给您推荐一部电影。"])) as stub:
        async with answerer_with_llm(kb, stub) as answerer:
            for question in ("推荐一部电影", "今天天气怎么样", "哈哈哈哈"):
                chunks = await read_all(answerer.stream(question))
                assert [chunk.text for chunk in chunks] == split_sentences(FALLBACK)
        assert stub.requests == []


async def test_with_the_semantic_retriever_too_refused_questions_send_no_request(
    tmp_path: Path,
) -> None:
    factory = RetrieverFactory(KnowledgeConfig(), tmp_path / "vectors")
    retriever = factory.load(ROOT / "knowledge" / "union-faq.yaml")
    assert factory.kind == "semantic"
    async with OpenAiStub(Reply(deltas=["出院后把材料交给单位工会就行。"])) as stub:
        llm = LlmConfig(enabled=True, base_url=stub.base_url, filler_after_seconds=5)
        answerer = Answerer.from_config(retriever, KnowledgeConfig(), llm)
        try:
            refused = await answerer.answer("明天股票会涨吗")
            assert (refused.source, len(stub.requests)) == ("fallback", 0)
            answered = await answerer.answer(QUESTION)
        finally:
            await answerer.aclose()
    assert (answered.source, answered.id, len(stub.requests)) == ("llm", "mutual-aid-claim", 1)
    user = stub.requests[0].body["messages"][1]["content"]
    assert retriever.knowledge.get("mutual-aid-claim").answer in user


async def test_an_off_topic_model_answer_is_not_aired(
    kb: KnowledgeBase, claim_sentences: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    deltas = ["今天天气很好，适合出去走走散散心。", "周末可以约上朋友去公园看看风景。"]
    async with OpenAiStub(Reply(deltas=deltas)) as stub, answerer_with_llm(kb, stub) as answerer:
        stream = answerer.stream(QUESTION)
        chunks = await read_all(stream)
    assert len(stub.requests) == 1
    assert chunks == [AnswerChunk(sentence) for sentence in claim_sentences]
    assert (stream.answer.source, stream.answer.id) == ("kb", "mutual-aid-claim")
    assert "LLM sentence not aired: off topic" in caplog.text
    assert "天气" not in caplog.text  # the model's words are not copied into the log


async def test_a_sentence_with_an_invented_number_is_not_aired(
    kb: KnowledgeBase, caplog: pytest.LogCaptureFixture
) -> None:
    deltas = [
        "出院后把申请材料交给单位工会。",
        "审核通过后三十天内互助金会打到您的银行卡。",
        "有问题打12351。",
    ]
    async with OpenAiStub(Reply(deltas=deltas)) as stub, answerer_with_llm(kb, stub) as answerer:
        stream = answerer.stream(QUESTION)
        chunks = await read_all(stream)
    assert chunks == [AnswerChunk("出院后把申请材料交给单位工会。")]
    assert (stream.answer.source, stream.answer.answer) == ("llm", "出院后把申请材料交给单位工会。")
    assert "a number not in the knowledge base (30)" in caplog.text


async def test_an_invented_number_in_the_first_sentence_brings_the_kb_answer(
    kb: KnowledgeBase, claim_sentences: list[str]
) -> None:
    deltas = ["您好，互助金在申请后3个工作日内到账。"]
    async with OpenAiStub(Reply(deltas=deltas)) as stub, answerer_with_llm(kb, stub) as answerer:
        stream = answerer.stream(QUESTION)
        chunks = await read_all(stream)
    assert chunks == [AnswerChunk(sentence) for sentence in claim_sentences]
    assert stream.answer.source == "kb"


def test_numbers_are_read_in_digits_and_in_chinese() -> None:
    assert numbers_in("三十天内、两个月、拨打12351、加班费1.50倍、一个问题") == {
        "30",
        "2",
        "12351",
        "1.5",
    }
    assert numbers_in("一百二十天，两万元，十五日") == {"120", "20000", "15"}
    guard = GroundingGuard("工伤认定多久内申请", [])
    assert guard.problem("一般要在30日内申请工伤认定。") is not None
    assert guard.problem("工伤认定要尽快申请。") is None


async def test_retrieval_runs_off_the_event_loop(kb: KnowledgeBase) -> None:
    """Embedding a question is blocking CPU work: the loop must keep airing meanwhile."""
    import threading

    class Recording:
        threads: list[int] = []

        def search(self, text: str, limit: int = 3) -> list:
            self.threads.append(threading.get_ident())
            return kb.search(text, limit)

    finder = Recording()
    answerer = Answerer(
        finder, min_score=0.35, fallback_text=FALLBACK, filler=FILLER, filler_after_seconds=0.0
    )
    assert (await answerer.answer(QUESTION)).id == "mutual-aid-claim"
    assert finder.threads and threading.get_ident() not in finder.threads


async def test_personal_data_a_model_writes_is_masked_in_the_answer_recorded(
    kb: KnowledgeBase,
) -> None:
    deltas = [
        "出院后把申请材料交给单位工会。",
        "审核通过后到账，有疑问发邮件到zhangwei@example.com问工会。",
    ]
    async with OpenAiStub(Reply(deltas=deltas)) as stub, answerer_with_llm(kb, stub) as answerer:
        stream = answerer.stream(QUESTION)
        chunks = await read_all(stream)
    assert [chunk.text for chunk in chunks] == [
        "出院后把申请材料交给单位工会。",
        "审核通过后到账，有疑问发邮件到[邮箱]问工会。",
    ]
    assert stream.answer.source == "llm" and "zhangwei" not in stream.answer.answer
