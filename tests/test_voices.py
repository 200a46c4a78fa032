"""Voices beyond the offline one: edge-tts and HTTP backends against real loopback servers,
the fallback chain (within one sentence, with probe-back), the disk cache, and a real run
whose primary voice is down."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from configs import write_config

from anchor.config import ConfigError, VoiceProfile, load_voice_chain
from anchor.harness.tts_servers import edge_stand_in, http_tts, tone
from anchor.messages import Line, MouthShape, SpeechAudio, WordTiming
from anchor.speech.base import SpeechError, Voice
from anchor.speech.cache import CachedVoice, SynthesisCache
from anchor.speech.chain import VoiceChain
from anchor.speech.edge_voice import EdgeVoice
from anchor.speech.http_voice import HttpVoice
from anchor.speech.pyttsx3_voice import Pyttsx3Voice
from anchor.speech.registry import build_voice
from anchor.speech.speaker import Speaker

RATE = 48000
OFFLINE = "engine: pyttsx3\nvoices: {zh: cmn-latn-pinyin, en: en-us}\n"


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) if len(pcm) else 0.0


def http_profile(url: str, *, request: str, timeout: float = 3.0, extra: str = "") -> VoiceProfile:
    import yaml

    data = {
        "engine": "http",
        "voices": {"zh": "中文女", "en": "english-1"},
        "timeout_seconds": timeout,
        "http": {"url": url, **yaml.safe_load(request)},
        **(yaml.safe_load(extra) or {}),
    }
    return VoiceProfile.model_validate(data)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- edge-tts -------------------------------------------------------------------------------


async def test_edge_voice_speaks_with_word_timings() -> None:
    async with edge_stand_in() as server:
        voice = EdgeVoice(
            {"zh": "zh-CN-XiaoxiaoNeural", "en": "en-US-AriaNeural"},
            rate=210,
            endpoint=server.url,
            timeout_seconds=5,
        )
        audio = await voice.synthesize("Welcome to the workers channel.", "en")
        await voice.aclose()
    assert audio.duration > 1.5 and rms(audio.pcm) > 0.1
    assert [t.text for t in audio.timings] == ["Welcome", "to", "the", "workers", "channel."]
    starts = [t.start for t in audio.timings]
    assert starts == sorted(starts) and starts[0] == 0.0
    assert all(t.start < t.end <= audio.duration for t in audio.timings)
    assert audio.cues and audio.cues[0].start == 0.0 and audio.cues[-1].start <= audio.duration
    assert {cue.shape for cue in audio.cues} > {MouthShape.CLOSED}
    assert "en-US, AriaNeural" in server.requests[0] and "rate='+20%'" in server.requests[0]


async def test_a_stalled_edge_service_times_out() -> None:
    async with edge_stand_in(stall=True) as server:
        voice = EdgeVoice({"zh": "zh-CN-XiaoxiaoNeural"}, endpoint=server.url, timeout_seconds=0.5)
        with pytest.raises(SpeechError, match="within 0.5 s"):
            await voice.synthesize("大家好。", "zh")
        await voice.aclose()
    assert len(server.requests) == 1  # it did reach the server, which never answered


# --- HTTP -----------------------------------------------------------------------------------


async def test_http_voice_posts_json_and_reads_wav(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_TTS_TOKEN", "tok-123")
    with http_tts(format="wav", rate=22050) as server:
        profile = http_profile(
            server.url,
            request="{json: {text: '{text}', speaker: '{voice}', lang: '{language}', speed: 1.0},"
            " token_env: TEST_TTS_TOKEN, format: wav}",
        )
        voice = HttpVoice.from_profile(profile)
        audio = await voice.synthesize("职工互助保障。", "zh")
        await voice.aclose()
    assert audio.sample_rate == 22050 and rms(audio.pcm) > 0.1
    request = server.requests[0]
    assert request["method"] == "POST" and request["authorization"] == "Bearer tok-123"
    assert json.loads(request["body"]) == {
        "text": "职工互助保障。",
        "speaker": "中文女",
        "lang": "zh",
        "speed": 1.0,
    }


async def test_http_voice_reads_raw_pcm16_from_a_get() -> None:
    with http_tts(format="pcm16", rate=16000) as server:
        profile = http_profile(
            server.url,
            request="{method: GET, query: {text: '{text}', spk: '{voice}'},"
            " format: pcm16, sample_rate: 16000}",
        )
        voice = HttpVoice.from_profile(profile)
        audio = await voice.synthesize("Hello workers.", "en")
        await voice.aclose()
    assert audio.sample_rate == 16000
    assert audio.duration == pytest.approx(0.3 + 0.05 * len("Hello workers."), abs=0.01)
    assert rms(audio.pcm) > 0.1
    assert server.requests[0]["query"] == {"text": "Hello workers.", "spk": "english-1"}


async def test_http_server_error_keeps_its_status_and_message() -> None:
    with http_tts(mode="fail") as server:
        voice = HttpVoice.from_profile(http_profile(server.url, request="{json: {t: '{text}'}}"))
        with pytest.raises(SpeechError, match="answered 500: synthesis backend exploded"):
            await voice.synthesize("你好。", "zh")
        await voice.aclose()


# --- the chain ------------------------------------------------------------------------------


async def test_chain_falls_back_within_the_sentence_and_probes_the_primary_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    with http_tts(mode="fail") as server:
        primary = HttpVoice.from_profile(http_profile(server.url, request="{json: {t: '{text}'}}"))
        offline = Pyttsx3Voice({"zh": "cmn-latn-pinyin", "en": "en-us"})
        chain = VoiceChain([primary, offline], retry_after=60, clock=clock)
        speaker = Speaker(chain, sample_rate=RATE, sentence_gap=0.1, max_sentence_seconds=30)
        lines = ["大家好，欢迎来到职工服务直播间。", "Hello, workers.", "有问题请留言。"]
        with caplog.at_level(logging.INFO, logger="anchor.speech.chain"):
            spoken = [await speaker.speak(Line(text)) for text in lines]
            assert all(s.speech_samples > 0.3 * RATE for s in spoken), "no sentence of silence"
            assert all(rms(s.samples[: s.speech_samples]) > 0.01 for s in spoken)
            assert speaker.failures == 0
            assert len(server.requests) == 1, "a voice that is down is not asked every sentence"
            assert chain.health[0].state == "down" and chain.fallbacks == 3

            server.mode = "ok"
            clock.now += 59
            await speaker.speak(Line("还在休息。"))
            assert len(server.requests) == 1
            clock.now += 2
            back = await speaker.speak(Line("工会热线一二三五一。"))
        await chain.aclose()
    assert len(server.requests) == 2 and back.speech_samples > 0.3 * RATE
    assert chain.health[0].state == "up" and chain.health[0].successes == 1
    assert chain.health[1].successes == 4 and chain.fallbacks == 4
    messages = [record.getMessage() for record in caplog.records]
    failed = [m for m in messages if m.startswith("voice http failed")]
    assert len(failed) == 1 and "500" in failed[0] and failed[0].endswith("using pyttsx3")
    assert messages[-1] == "voice http is back"


class ScriptedVoice(Voice):
    """A voice that answers with a tone, or fails, as the test says; counts its calls."""

    def __init__(self, name: str, *, fails: bool = False) -> None:
        self.name = name
        self.fails = fails
        self.calls = 0

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        self.calls += 1
        if self.fails:
            raise SpeechError(f"{self.name} is broken")
        timings = (WordTiming(text, 0.0, 0.5),)
        return SpeechAudio(tone(16000, 0.2 + 0.01 * len(text)), 16000, timings=timings)


async def test_a_stalled_server_costs_its_timeout_then_the_fallback_speaks() -> None:
    with http_tts(mode="stall", stall_seconds=3) as server:
        primary = HttpVoice.from_profile(
            http_profile(server.url, request="{json: {t: '{text}'}}", timeout=0.3)
        )
        backup = ScriptedVoice("backup")
        chain = VoiceChain([primary, backup])
        audio = await chain.synthesize("你好。", "zh")
        await chain.aclose()
    assert rms(audio.pcm) > 0.1 and backup.calls == 1
    assert "within 0.3 s" in str(chain.health[0].last_error)


async def test_the_chain_fails_only_when_every_voice_fails_and_backs_off() -> None:
    clock = Clock()
    first, second = ScriptedVoice("a", fails=True), ScriptedVoice("b", fails=True)
    chain = VoiceChain([first, second], retry_after=10, max_retry_after=50, clock=clock)
    with pytest.raises(SpeechError, match="a is broken; b: b is broken"):
        await chain.synthesize("x", "en")
    second.fails = False
    await chain.synthesize("y", "en")  # both rest, so both are tried as a last resort
    assert (first.calls, second.calls) == (2, 2)
    await chain.synthesize("y", "en")  # a rests, b is back
    assert (first.calls, second.calls) == (2, 3)
    retries = []
    for _ in range(3):
        clock.now = chain.health[0].retry_at
        await chain.synthesize("z", "en")
        retries.append(chain.health[0].backoff)
    assert retries == [40, 50, 50] and first.calls == 5
    first.fails = False
    clock.now = chain.health[0].retry_at
    await chain.synthesize("z", "en")
    assert (first.calls, second.calls) == (6, 6) and chain.health[0].state == "up"


async def test_a_cache_hit_does_not_bring_a_failing_voice_back(tmp_path: Path) -> None:
    clock = Clock()
    primary = ScriptedVoice("primary")
    cached = CachedVoice(primary, SynthesisCache(tmp_path, 10_000_000), PROFILE)
    chain = VoiceChain([cached, ScriptedVoice("backup")], retry_after=10, clock=clock)
    await chain.synthesize("每天都说的一句。", "zh")  # now on disk
    primary.fails = True
    await chain.synthesize("新的一句。", "zh")
    assert chain.health[0].state == "down"
    clock.now = chain.health[0].retry_at
    repeat = await chain.synthesize("每天都说的一句。", "zh")  # the probe hits the cache
    assert rms(repeat.pcm) > 0.1 and primary.calls == 2
    assert chain.health[0].state == "down", "audio from disk proves nothing about the server"
    primary.fails = False
    await chain.synthesize("又一句新的。", "zh")
    assert chain.health[0].state == "up" and primary.calls == 3


# --- profiles -------------------------------------------------------------------------------


def test_fallback_loops_and_missing_profiles_name_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(OFFLINE + "fallback: b\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text(OFFLINE + "rate: 180\nfallback: a\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(OFFLINE + "fallback: nowhere\n", encoding="utf-8")
    with pytest.raises(ConfigError) as loop:
        load_voice_chain(tmp_path, "a")
    assert str(loop.value) == f"{tmp_path / 'b.yaml'}:4: fallback: 'a' makes a loop (a -> b -> a)"
    with pytest.raises(ConfigError) as missing:
        load_voice_chain(tmp_path, "c")
    assert str(missing.value).startswith(f"{tmp_path / 'c.yaml'}:3: fallback: no voice profile")


def test_engine_settings_are_checked(tmp_path: Path) -> None:
    (tmp_path / "h.yaml").write_text(OFFLINE.replace("pyttsx3", "http"), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(
        "engine: http\nvoices: {zh: a}\nhttp: {url: 'http://x/tts', format: pcm16}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="engine http needs an http: block"):
        load_voice_chain(tmp_path, "h")
    with pytest.raises(ConfigError, match="p.yaml:3: http: format pcm16 needs sample_rate"):
        load_voice_chain(tmp_path, "p")


def test_shipped_profiles_fall_back_to_the_offline_voice() -> None:
    voices = Path(__file__).resolve().parent.parent / "voices"
    for name, engine in (("neural", "edge-tts"), ("local-server", "http")):
        chain = load_voice_chain(voices, name)
        assert [(n, p.engine) for n, p in chain][0] == (name, engine)
        assert [n for n, _ in chain] == [name, "offline"]
        assert chain[-1][1].engine in ("pyttsx3", "espeak")


# --- the cache ------------------------------------------------------------------------------

PROFILE = VoiceProfile(engine="http", voices={"zh": "a"}, http={"url": "http://x/tts"})


def entry_sizes(directory: Path) -> list[int]:
    return [path.stat().st_size for path in directory.iterdir()]


def corrupt_every_entry(directory: Path) -> None:
    for path in directory.iterdir():
        path.write_bytes(b"PK\x03\x04 not really a zip")


async def test_a_cache_hit_costs_no_synthesis_and_survives_a_restart(tmp_path: Path) -> None:
    backend = ScriptedVoice("counting")
    voice = CachedVoice(backend, SynthesisCache(tmp_path, 10_000_000), PROFILE)
    first = await voice.synthesize("你好。", "zh")
    again = await voice.synthesize("你好。", "zh")
    other = await voice.synthesize("你好。", "en")  # another language is another sound
    assert backend.calls == 2
    assert np.array_equal(first.pcm, again.pcm) and again.timings == first.timings
    assert len(other.pcm) == len(first.pcm)

    cache = SynthesisCache(tmp_path, 10_000_000)
    restarted = CachedVoice(backend, cache, PROFILE)
    reread = await restarted.synthesize("你好。", "zh")
    assert backend.calls == 2 and np.array_equal(reread.pcm, first.pcm)
    assert cache.stats()["hits"] == 1 and cache.stats()["entries"] == 2


async def test_the_cache_stays_within_its_bound(tmp_path: Path) -> None:
    bound = 60_000
    cache = SynthesisCache(tmp_path, bound)
    voice = CachedVoice(ScriptedVoice("counting"), cache, PROFILE)
    for number in range(40):
        await voice.synthesize(f"第{number}句话。", "zh")
    sizes = entry_sizes(tmp_path)
    assert sum(sizes) <= bound and cache.bytes == sum(sizes)
    assert cache.evictions > 0 and cache.stats()["entries"] == len(sizes)
    backend = ScriptedVoice("counting")
    latest = CachedVoice(backend, cache, PROFILE)
    await latest.synthesize("第39句话。", "zh")  # the newest entry was kept
    await latest.synthesize("第0句话。", "zh")  # the oldest went first
    assert backend.calls == 1


async def test_a_corrupt_entry_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    backend = ScriptedVoice("counting")
    voice = CachedVoice(backend, SynthesisCache(tmp_path, 10_000_000), PROFILE)
    await voice.synthesize("你好。", "zh")
    corrupt_every_entry(tmp_path)
    fresh = CachedVoice(backend, SynthesisCache(tmp_path, 10_000_000), PROFILE)
    audio = await fresh.synthesize("你好。", "zh")
    assert backend.calls == 2 and rms(audio.pcm) > 0.1
    await fresh.synthesize("你好。", "zh")
    assert backend.calls == 2, "the replaced entry is read again"


async def test_build_voice_chains_the_profiles_each_behind_the_cache(tmp_path: Path) -> None:
    (tmp_path / "offline.yaml").write_text(OFFLINE, encoding="utf-8")
    with http_tts() as server:
        (tmp_path / "local.yaml").write_text(
            f"engine: http\nvoices: {{zh: a, en: b}}\nfallback: offline\n"
            f"http: {{url: '{server.url}', json: {{text: '{{text}}'}}}}\n",
            encoding="utf-8",
        )
        cache = SynthesisCache(tmp_path / "cache", 10_000_000)
        chain = await build_voice(tmp_path, "local", cache)
        await chain.synthesize("你好。", "zh")
        await chain.synthesize("你好。", "zh")
        await chain.aclose()
    assert chain.name == "http > pyttsx3" and len(server.requests) == 1
    assert cache.stats()["hits"] == 1


# --- a real run -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_whose_primary_voice_is_down_has_no_gap_and_no_silence(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "offline.yaml").write_text(OFFLINE, encoding="utf-8")
    out = tmp_path / "show.ts"
    with http_tts(mode="fail") as server:
        (voices / "local.yaml").write_text(
            f"engine: http\nvoices: {{zh: a, en: b}}\nfallback: offline\n"
            f"http: {{url: '{server.url}', json: {{text: '{{text}}'}}}}\n",
            encoding="utf-8",
        )
        config = write_config(tmp_path, extra="voice: local\n")
        text = config.read_text(encoding="utf-8").splitlines()
        text = [f"voices_dir: {voices}" if t.startswith("voices_dir:") else t for t in text]
        config.write_text("\n".join(text) + "\n", encoding="utf-8")
        run = subprocess.run(
            [sys.executable, "-m", "anchor", "run", "--config", str(config), "--fast"]
            + ["--duration", "8s", "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr.count("voice http failed") == 1, run.stderr[-3000:]
    assert len(server.requests) == 1, "the failed voice rests instead of being asked again"
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        pts = [frame.pts for frame in container.decode(stream)]
        step = round(1 / (stream.time_base * stream.average_rate))
    gaps = np.diff(pts)
    assert len(pts) >= 8 * 30 - 2 and gaps.min() > 0 and gaps.max() <= step
    with av.open(str(out)) as container:
        audio = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)])
    windows = audio[: len(audio) // 4800 * 4800].reshape(-1, 4800)
    loud = np.sqrt(np.mean(windows**2, axis=1)) > 0.02
    assert loud.mean() > 0.3, "the offline voice speaks while the primary is down"


def test_another_model_or_a_reinstalled_one_is_another_voice_to_the_cache(tmp_path: Path) -> None:
    from anchor.speech.cache import synthesis_key

    def profile(folder: Path) -> VoiceProfile:
        return VoiceProfile(engine="sherpa", voices={"zh": "0"}, model_dir=folder)

    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"model")
    key = synthesis_key(profile(first), "你好。", "zh")
    assert key == synthesis_key(profile(first), "你好。", "zh")
    assert key != synthesis_key(profile(second), "你好。", "zh")
    (first / "model.onnx").write_bytes(b"another model, installed over the first")
    assert key != synthesis_key(profile(first), "你好。", "zh")
