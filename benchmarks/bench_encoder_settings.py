"""What x264 settings cost in CPU, bits and picture quality for the real show, side by side.

Renders ~20 s of the host at 1280x720@30 once (the real playout in fast mode, speech-like
audio), keeps the frames and their audio in memory, then encodes them again and again with
x264 variants into MPEG-TS, interleaving the variants so a busy shared machine hurts them
alike. For each variant it prints the median CPU seconds (user+sys of the whole process,
x264's own threads included) per stream second, the video bitrate, the luma PSNR of the
decoded output against the source frames (mean and worst frame), and the H.264 profile
ffprobe reads. Then it profiles a few seconds of the live-paced pipeline with cProfile (event
loop and media thread) to show how the part outside the encoder splits.

    .venv/bin/python benchmarks/bench_encoder_settings.py [--seconds 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import resource
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from bench_pipeline import FPS, RATE, ROOT, _AudioTap, _RecordingRenderer, _speechlike_lines

from anchor.avatar.loader import load_pack
from anchor.avatar.renderer import AvatarRenderer
from anchor.media.clock import MediaClock
from anchor.media.encoder import BT709, LIMITED_RANGE, EncoderSettings, StreamEncoder
from anchor.media.linequeue import LineQueue
from anchor.media.output import OutputTarget
from anchor.media.playout import Playout

WIDTH, HEIGHT = 1280, 720
BITRATE_KBPS = 2500


@dataclass(frozen=True)
class Variant:
    """One way to configure libx264; the defaults are what StreamEncoder does today."""

    name: str
    preset: str = "veryfast"
    tune: str = "zerolatency"
    threads: int = 0
    keyframe_seconds: float = 2.0
    x264_params: str = ""
    crf: int | None = None  # capped CRF (crf + maxrate/bufsize) instead of a target bitrate
    extra: dict[str, str] = field(default_factory=dict)
    aac: dict[str, str] = field(default_factory=dict)  # options of FFmpeg's AAC encoder


VARIANTS = [
    Variant("current"),
    Variant("threads 1", threads=1),
    Variant("animation", tune="animation,zerolatency"),
    Variant("stillimage", tune="stillimage,zerolatency"),
    Variant("superfast", preset="superfast"),
    Variant("ultrafast", preset="ultrafast"),
    Variant("keyframe 4 s", keyframe_seconds=4.0),
    Variant("me=dia subme=1", x264_params="me=dia:subme=1"),
    Variant("aq-mode=0", x264_params="aq-mode=0"),
    Variant("capped crf 23", crf=23),
    Variant("t1 kf4", threads=1, keyframe_seconds=4.0),
    Variant("t1 kf4 superfast", preset="superfast", threads=1, keyframe_seconds=4.0),
    Variant("t1 kf4 dia/subme1", threads=1, keyframe_seconds=4.0, x264_params="me=dia:subme=1"),
    Variant("aac_coder=fast", aac={"aac_coder": "fast"}),
    Variant(
        "t1 kf4 dia/subme1 aacfast",
        threads=1,
        keyframe_seconds=4.0,
        x264_params="me=dia:subme=1",
        aac={"aac_coder": "fast"},
    ),
]


class VariantEncoder(StreamEncoder):
    """StreamEncoder with the x264 options of a Variant; writing, audio and muxing are its own.

    Only file targets: that is all a benchmark needs."""

    def __init__(self, out: Path, clock: MediaClock, variant: Variant) -> None:
        settings = EncoderSettings(
            width=WIDTH,
            height=HEIGHT,
            video_bitrate_kbps=BITRATE_KBPS,
            preset=variant.preset,
            keyframe_seconds=variant.keyframe_seconds,
            threads=variant.threads,
        )
        super().__init__(OutputTarget.parse(str(out)), clock, settings)
        self._variant = variant

    def open(self) -> None:
        s, v = self._settings, self._variant
        fps = self._clock.fps
        container = av.open(self._target.url, "w", format=self._target.container)
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = s.width, s.height
        video.pix_fmt = "yuv420p"
        ctx = video.codec_context
        ctx.time_base = Fraction(1, fps)
        ctx.gop_size = max(1, round(fps * s.keyframe_seconds))
        ctx.thread_count = s.threads
        ctx.colorspace = ctx.color_primaries = ctx.color_trc = BT709
        ctx.color_range = LIMITED_RANGE
        options = {
            "preset": s.preset,
            "tune": v.tune,
            "maxrate": f"{s.video_bitrate_kbps}k",
            "bufsize": f"{s.video_bitrate_kbps * 2}k",
            "sc_threshold": "0",
            **v.extra,
        }
        if v.crf is None:
            video.bit_rate = s.video_bitrate_kbps * 1000
        else:
            options["crf"] = str(v.crf)
        if v.x264_params:
            options["x264-params"] = v.x264_params
        video.options = options
        audio = container.add_stream("aac", rate=self._clock.sample_rate, layout="mono")
        audio.bit_rate = s.audio_bitrate_kbps * 1000
        audio.codec_context.time_base = Fraction(1, self._clock.sample_rate)
        audio.options = dict(v.aac)
        self._container, self._video, self._audio = container, video, audio
        container.start_encoding()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------------
# The show, rendered once


async def _record_show(seconds: float, out: Path) -> tuple[list, list[np.ndarray], float]:
    """Runs the real playout in fast mode; returns the render calls, the audio per frame and
    the whole pipeline's CPU seconds."""
    clock = MediaClock(RATE, FPS)
    pack = load_pack(ROOT / "avatars" / "default")
    renderer = _RecordingRenderer(AvatarRenderer(pack, WIDTH, HEIGHT, fps=FPS))
    encoder = _AudioTap(
        StreamEncoder(OutputTarget.parse(str(out)), clock, EncoderSettings(WIDTH, HEIGHT))
    )
    lines = LineQueue(maxsize=1000)
    for spoken in _speechlike_lines(seconds):
        await lines.put(spoken)
    playout = Playout(
        clock, renderer, encoder, lines, live=False, duration_frames=clock.frames_for(seconds)
    )
    cpu0 = _cpu_seconds()
    await playout.run()
    return renderer.calls, encoder.audio, _cpu_seconds() - cpu0


def _render_frames(calls) -> tuple[list[np.ndarray], float]:
    """The same pictures again (identical bytes), kept; and the render CPU per frame."""
    pack = load_pack(ROOT / "avatars" / "default")
    renderer = AvatarRenderer(pack, WIDTH, HEIGHT, fps=FPS)
    cpu0 = _cpu_seconds()
    frames = [renderer.render(*call).copy() for call in calls]
    return frames, (_cpu_seconds() - cpu0) / len(calls)


# ---------------------------------------------------------------------------------------------
# Encoding and judging one variant


def _encode(variant: Variant, frames, audio, out: Path) -> float:
    """CPU seconds (whole process, all threads) for open + every frame + close."""
    encoder = VariantEncoder(out, MediaClock(RATE, FPS), variant)
    cpu0 = _cpu_seconds()
    encoder.open()
    for n, (picture, samples) in enumerate(zip(frames, audio, strict=True)):
        encoder.write(n, picture, samples)
    encoder.close()
    return _cpu_seconds() - cpu0


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 99.0 if mse < 1e-10 else 10 * np.log10(255.0**2 / mse)


def _audio_snr(out: Path, source: np.ndarray) -> float:
    """SNR in dB of the decoded AAC against the source, after finding the codec's delay."""
    with av.open(str(out)) as container:
        decoded = np.concatenate(
            [f.to_ndarray().reshape(-1) for f in container.decode(container.streams.audio[0])]
        )
    n = min(len(decoded), len(source)) - 4096
    a, b = source[: n // 2], decoded[: n // 2 + 4096]
    size = 1 << int(np.ceil(np.log2(len(b) + len(a))))
    corr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)[:4096]
    lag = int(np.argmax(corr))
    ref, got = source[:n], decoded[lag : lag + n]
    return 10 * np.log10(float(np.sum(ref**2)) / float(np.sum((ref - got) ** 2)))


def _judge(out: Path, frames: list[np.ndarray], seconds: float) -> dict:
    """Video kbps from the packets, luma PSNR per decoded frame against its source."""
    scores, video_bytes, keyframes = [], 0, 0
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size:
                video_bytes += packet.size
                keyframes += packet.is_keyframe
            for frame in packet.decode():
                index = len(scores)
                luma = frame.to_ndarray(format="yuv420p")[:HEIGHT]
                scores.append(_psnr(luma, frames[index][:HEIGHT]))
    return {
        "frames": len(scores),
        "kbps": video_bytes * 8 / seconds / 1000,
        "psnr_mean": statistics.fmean(scores),
        "psnr_min": min(scores),
        "keyframes": keyframes,
    }


def _probe(out: Path) -> dict:
    """What ffprobe reads in the video stream; `errors` is whatever it complained about."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    streams = json.loads(result.stdout or "{}").get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), {})
    return {
        "profile": video.get("profile", "?"),
        "pix_fmt": video.get("pix_fmt", "?"),
        "level": video.get("level", "?"),
        "errors": result.stderr.strip(),
        "codecs": ",".join(s.get("codec_name", "?") for s in streams),
    }


def compare_variants(
    variants: list[Variant], frames, audio, seconds: float, repeats: int, workdir: Path
) -> list[dict]:
    cpu: dict[str, list[float]] = {v.name: [] for v in variants}
    for round_ in range(repeats):
        order = variants if round_ % 2 == 0 else variants[::-1]
        for variant in order:
            cpu[variant.name].append(
                _encode(variant, frames, audio, workdir / f"{variants.index(variant)}.ts")
            )
    rows = []
    for i, variant in enumerate(variants):
        out = workdir / f"{i}.ts"
        runs = [c / seconds for c in cpu[variant.name]]
        rows.append(
            {
                "variant": variant,
                "cpu": statistics.median(runs),
                "spread": max(runs) - min(runs),
                **_judge(out, frames, seconds),
                "audio_snr": _audio_snr(out, np.concatenate(audio)),
                **_probe(out),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Where the rest of the pipeline's time goes


class _MediaThreadProfile:
    """Wraps the renderer and encoder so the media thread's work is profiled too (cProfile
    only follows the thread that enabled it)."""

    def __init__(self, renderer: AvatarRenderer, encoder: StreamEncoder) -> None:
        self.profile = cProfile.Profile()
        self._renderer, self._encoder = renderer, encoder

    def render(self, *args):
        return self.profile.runcall(self._renderer.render, *args)

    def open(self) -> None:
        self.profile.runcall(self._encoder.open)

    def write(self, frame_index, picture, samples) -> None:
        self.profile.runcall(self._encoder.write, frame_index, picture, samples)

    def close(self) -> None:
        self.profile.runcall(self._encoder.close)


async def _live_profile(seconds: float, out: Path):
    clock = MediaClock(RATE, FPS)
    pack = load_pack(ROOT / "avatars" / "default")
    encoder = StreamEncoder(OutputTarget.parse(str(out)), clock, EncoderSettings(WIDTH, HEIGHT))
    media = _MediaThreadProfile(AvatarRenderer(pack, WIDTH, HEIGHT, fps=FPS), encoder)
    lines = LineQueue(maxsize=1000)
    for spoken in _speechlike_lines(seconds):
        await lines.put(spoken)
    playout = Playout(
        clock, media, media, lines, live=True, duration_frames=clock.frames_for(seconds)
    )
    loop_profile = cProfile.Profile()
    cpu0 = _cpu_seconds()
    loop_profile.enable()
    await playout.run()
    loop_profile.disable()
    return _cpu_seconds() - cpu0, loop_profile, media.profile, playout.stats


PROFILE_PARTS = [
    # label, (file suffix or "~" for built-ins, function name fragment), cumulative time
    ("avatar render", "avatar/renderer.py", "render"),
    ("yuv array -> AVFrame", "~", "av.video.frame.from_ndarray"),
    ("x264 encode (calling thread)", "~", "encode' of 'av.video.stream"),
    ("AAC encode", "~", "encode' of 'av.audio.stream"),
    ("MPEG-TS mux", "~", "mux' of 'av.container.output"),
    ("audio slicing (_take_samples)", "media/playout.py", "_take_samples"),
    ("lip sync (_mouth_for)", "media/playout.py", "_mouth_for"),
]


def _part_seconds(stats: pstats.Stats, suffix: str, fragment: str) -> float:
    total = 0.0
    for (filename, _line, name), (_cc, _nc, _tt, cum, _callers) in stats.stats.items():
        if filename.endswith(suffix) and fragment in name:
            total += cum
    return total


def profile_pipeline(seconds: float, workdir: Path) -> None:
    cpu, loop_profile, media_profile, stats = asyncio.run(
        _live_profile(seconds, workdir / "profile.ts")
    )
    print(
        f"\nlive-paced pipeline under cProfile, {seconds:.0f} stream s (current encoder, "
        f"lines queued in advance, no TTS): {cpu / seconds:.3f} CPU s per stream s "
        f"(profiler overhead included); renders skipped {stats.renders_skipped}, "
        f"max lateness {stats.max_lateness_s * 1000:.0f} ms"
    )
    media = pstats.Stats(media_profile)
    loop = pstats.Stats(loop_profile)
    print("  wall ms per stream second, by part (media thread + event loop):")
    for label, suffix, fragment in PROFILE_PARTS:
        ms = _part_seconds(media, suffix, fragment) + _part_seconds(loop, suffix, fragment)
        print(f"    {label:32s} {ms / seconds * 1000:7.1f}")
    for title, profile in (("media thread", media), ("event loop", loop)):
        buffer = io.StringIO()
        profile.stream = buffer
        profile.sort_stats("tottime").print_stats(8)
        body = buffer.getvalue()
        start = body.find("   ncalls")
        print(f"  top functions by own time, {title} (seconds over the whole run):")
        print("\n".join("    " + line for line in body[start:].strip().splitlines()))


# ---------------------------------------------------------------------------------------------


def _print_table(rows: list[dict], base_psnr: float) -> None:
    print(
        f"\n{'variant':26s} {'CPU s/s':>8s} {'spread':>7s} {'video kbps':>10s} "
        f"{'PSNR-Y mean':>11s} {'ΔPSNR':>6s} {'min':>6s} {'IDR':>4s} {'frames':>6s} "
        f"{'AAC SNR':>7s}  profile"
    )
    for r in rows:
        ok = "" if not r["errors"] and r["pix_fmt"] == "yuv420p" else f"  !! {r['errors']}"
        print(
            f"{r['variant'].name:26s} {r['cpu']:8.3f} {r['spread']:7.3f} {r['kbps']:10.0f} "
            f"{r['psnr_mean']:11.2f} {r['psnr_mean'] - base_psnr:+6.2f} {r['psnr_min']:6.2f} "
            f"{r['keyframes']:4d} {r['frames']:6d} {r['audio_snr']:7.1f}  "
            f"{r['profile']} {r['pix_fmt']} L{r['level']} [{r['codecs']}]{ok}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="stream seconds of show")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per variant")
    parser.add_argument("--profile-seconds", type=float, default=5.0, help="live-paced profile")
    parser.add_argument(
        "--variants", help="comma-separated variant names (default: all; 'current' is kept first)"
    )
    args = parser.parse_args()
    chosen = set(args.variants.split(",")) if args.variants else {v.name for v in VARIANTS}
    variants = [v for v in VARIANTS if v.name in chosen | {"current"}]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        calls, audio, pipeline_cpu = asyncio.run(_record_show(args.seconds, workdir / "show.ts"))
        frames, render_cpu = _render_frames(calls)
        seconds = len(frames) / FPS
        print(
            f"{WIDTH}x{HEIGHT}@{FPS}, {seconds:.1f} s of show, {BITRATE_KBPS} kbps target: "
            f"fast-mode pipeline (current encoder) {pipeline_cpu / seconds:.3f} CPU s per "
            f"stream s; render alone {render_cpu * 1000:.2f} ms CPU per frame"
        )
        rows = compare_variants(variants, frames, audio, seconds, args.repeats, workdir)
        _print_table(rows, rows[0]["psnr_mean"])
        outside = pipeline_cpu / seconds - rows[0]["cpu"]
        print(
            f"\noutside the encoder (fast-mode pipeline minus 'current' encode): "
            f"{outside:.3f} CPU s per stream s; pipeline estimate per variant = that + its CPU s/s"
        )
        for r in rows:
            print(f"  {r['variant'].name:26s} ~{outside + r['cpu']:.3f}")
        profile_pipeline(args.profile_seconds, workdir)
        print(f"\n(total wall {time.perf_counter() - started:.0f} s, repeats {args.repeats})")


if __name__ == "__main__":
    main()
