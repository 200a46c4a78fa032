"""The LLM client against a real HTTP server on loopback speaking the OpenAI protocol:
what it sends, what it yields, and that slow, stalled and failing servers end in an
LlmError that keeps the server's own status and words."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from anchor.answers.llm import LlmClient, LlmError, LlmTimeout
from anchor.config import LlmConfig
from anchor.harness.standins import OpenAiStub, Reply

MESSAGES = [{"role": "user", "content": "互助金怎么申请？"}]
KEY = "sk-test-5f2d9c1e7a"


@asynccontextmanager
async def client_for(base_url: str, **overrides: Any) -> AsyncIterator[LlmClient]:
    options: dict[str, Any] = {
        "api_key": KEY,
        "first_token_seconds": 2.0,
        "total_seconds": 5.0,
        "max_tokens": 128,
        "temperature": 0.2,
    }
    options.update(overrides)
    api_key = options.pop("api_key")
    client = LlmClient(base_url, "qwen-test", api_key, **options)
    try:
        yield client
    finally:
        await client.aclose()


async def collect(client: LlmClient) -> tuple[list[str], LlmError | None]:
    """The deltas the client yielded, and the error it ended with (if any)."""
    deltas: list[str] = []
    try:
        async for delta in client.stream_chat(MESSAGES):
            deltas.append(delta)
    except LlmError as exc:
        return deltas, exc
    return deltas, None


async def test_streams_the_answer_delta_by_delta_and_sends_an_openai_request() -> None:
    reply = Reply(deltas=["出院后", "把材料", "交给单位工会。"])
    async with OpenAiStub(reply) as stub, client_for(stub.base_url + "/") as client:
        deltas, error = await collect(client)
    assert error is None
    assert deltas == ["出院后", "把材料", "交给单位工会。"]
    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body == {
        "model": "qwen-test",
        "messages": MESSAGES,
        "stream": True,
        "max_tokens": 128,
        "temperature": 0.2,
    }


async def test_no_api_key_means_no_authorization_header() -> None:
    async with (
        OpenAiStub(Reply(deltas=["好的。"])) as stub,
        client_for(stub.base_url, api_key=None) as client,
    ):
        deltas, error = await collect(client)
    assert (deltas, error) == (["好的。"], None)
    assert "authorization" not in stub.requests[0].headers


async def test_no_first_text_in_time_is_a_timeout_and_the_connection_is_closed() -> None:
    async with OpenAiStub(Reply(deltas=["太慢了。"], first_delay=5)) as stub:
        async with client_for(stub.base_url, first_token_seconds=0.3) as client:
            deltas, error = await collect(client)
        await stub.client_hung_up()
    assert deltas == []
    assert isinstance(error, LlmTimeout)
    assert error.status is None
    assert "no text within 0.3 s" in str(error)


async def test_a_server_stalling_mid_answer_hits_the_total_deadline() -> None:
    reply = Reply(deltas=["第一句。", "第二句", "永远不会来。"], stall_after=2)
    async with OpenAiStub(reply) as stub:
        async with client_for(stub.base_url, first_token_seconds=0.4, total_seconds=0.6) as client:
            deltas, error = await collect(client)
        await stub.client_hung_up()
    assert deltas == ["第一句。", "第二句"]
    assert isinstance(error, LlmTimeout)
    assert "not complete within 0.6 s" in str(error)


async def test_http_500_keeps_the_status_and_the_servers_message_verbatim() -> None:
    message = "CUDA error: out of memory（显存不足）"
    reply = Reply(status=500, error={"error": {"message": message, "type": "server_error"}})
    async with OpenAiStub(reply) as stub, client_for(stub.base_url) as client:
        deltas, error = await collect(client)
    assert deltas == []
    assert isinstance(error, LlmError) and not isinstance(error, LlmTimeout)
    assert (error.status, error.message) == (500, message)
    assert str(error) == f"HTTP 500: {message}"


async def test_http_401_keeps_the_message_and_the_key_is_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    message = "Incorrect API key provided. You can find your API key in your account settings."
    reply = Reply(status=401, error={"error": {"message": message, "code": "invalid_api_key"}})
    caplog.set_level(logging.DEBUG)
    async with OpenAiStub(reply) as stub, client_for(stub.base_url) as client:
        deltas, error = await collect(client)
        assert KEY not in repr(client)
    assert deltas == []
    assert error is not None
    assert (error.status, error.message) == (401, message)
    assert caplog.records, "the HTTP exchange should have been logged at debug level"
    assert KEY not in caplog.text
    assert KEY not in str(error)


async def test_an_ollama_style_error_string_is_kept() -> None:
    reply = Reply(status=404, error={"error": 'model "qwen-test" not found, try pulling it first'})
    async with OpenAiStub(reply) as stub, client_for(stub.base_url) as client:
        _, error = await collect(client)
    assert error is not None
    assert (error.status, error.message) == (
        404,
        'model "qwen-test" not found, try pulling it first',
    )


async def test_an_error_sent_inside_the_stream_becomes_an_llm_error() -> None:
    failure = '{"error": {"message": "context length exceeded"}}'
    reply = Reply(deltas=["好的，"], events=[failure])
    async with OpenAiStub(reply) as stub, client_for(stub.base_url) as client:
        deltas, error = await collect(client)
    assert deltas == ["好的，"]
    assert error is not None and error.message == "context length exceeded"


async def test_nothing_listening_is_an_llm_error_naming_the_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    async with client_for(base_url) as client:
        deltas, error = await collect(client)
    assert deltas == []
    assert error is not None and error.status is None
    assert base_url in str(error)


async def test_built_from_config_with_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", "sk-from-env")
    async with OpenAiStub(Reply(deltas=["在。"])) as stub:
        config = LlmConfig(base_url=stub.base_url, model="m1", api_key_env="TEST_LLM_KEY")
        client = LlmClient.from_config(config)
        try:
            deltas, error = await collect(client)
        finally:
            await client.aclose()
    assert (deltas, error) == (["在。"], None)
    assert stub.requests[0].headers["authorization"] == "Bearer sk-from-env"
    assert stub.requests[0].body["model"] == "m1"
