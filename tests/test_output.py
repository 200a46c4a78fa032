"""Destinations map to the right container, and bad ones say why."""

from __future__ import annotations

import pytest

from anchor.media.output import OutputError, OutputTarget


@pytest.mark.parametrize(
    ("destination", "container", "is_file"),
    [
        ("show.ts", "mpegts", True),
        ("out/show.mp4", "mp4", True),
        ("show.MKV", "matroska", True),
        ("udp://127.0.0.1:5600?pkt_size=1316", "mpegts", False),
        ("srt://127.0.0.1:9000?mode=listener", "mpegts", False),
        ("rtmp://127.0.0.1/live/key", "flv", False),
    ],
)
def test_destinations(destination: str, container: str, is_file: bool) -> None:
    target = OutputTarget.parse(destination)
    assert (target.container, target.is_file) == (container, is_file)


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("show.avi", "unsupported file type '.avi'"),
        ("show", "unsupported file type '(none)'"),
        ("http://example.invalid/x", "unsupported URL scheme 'http'"),
        ("udp://", "has no host"),
        ("  ", "empty destination"),
    ],
)
def test_bad_destinations_say_why(destination: str, message: str) -> None:
    with pytest.raises(OutputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        OutputTarget.parse(destination)


def test_udp_description_tells_the_operator_how_to_watch() -> None:
    text = OutputTarget.parse("udp://127.0.0.1:5600?pkt_size=1316").describe()
    assert "ffplay udp://127.0.0.1:5600" in text and "OBS" in text
