"""The neural voice's engine process: two ONNX sessions, one sentence at a time.

This module is what the child process imports (see `neural_voice`), so it imports nothing but
numpy and, once started, onnxruntime: the front-end's dictionaries and the daemon's modules
stay in the daemon, and the child holds only the model (~240 MB with the interpreter).

Inference uses one thread: a sentence takes a few per cent of its length on one core, and the
machine also encodes video. The child ignores SIGINT (blocked by the parent while it starts):
a Ctrl-C in the terminal is the daemon's to handle, which then closes the voice and this.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from anchor.speech.engine_child import answer_requests, ignore_interrupts
from anchor.speech.neural_model import ACOUSTIC, VOCODER

SAMPLE_RATE = 24_000
HOP = 300  # samples per mel frame: 12.5 ms at 24 kHz


def serve(conn: Connection, model_dir: str) -> None:
    """The child process: load the two models, then one sentence at a time until told.

    Requests are (phoneme ids, speed, f0); answers ("ok", 16-bit samples, frames per symbol)."""
    ignore_interrupts()
    try:
        engine = _Engine(Path(model_dir))
    except Exception as exc:
        conn.send(("error", f"cannot load the model from {model_dir}: {exc}"))
        return
    conn.send(("ready", SAMPLE_RATE))
    answer_requests(conn, engine.speak)


class _Engine:
    """The two ONNX sessions, in the child only."""

    def __init__(self, model_dir: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self._acoustic = onnxruntime.InferenceSession(
            str(model_dir / ACOUSTIC), options, providers=providers
        )
        self._vocoder = onnxruntime.InferenceSession(
            str(model_dir / VOCODER), options, providers=providers
        )

    def speak(self, ids: list[int], speed: float, f0: float) -> tuple[bytes, list[int]]:
        outputs = self._acoustic.run(
            None,
            {
                "input_ids": np.array([ids], np.int32),
                "speaker_ids": np.array([0], np.int32),
                "speed_ratios": np.array([speed], np.float32),
                "f0_ratios": np.array([f0], np.float32),
                "energy_ratios": np.array([1.0], np.float32),
            },
        )
        mel, durations = outputs[1], outputs[2]
        audio = self._vocoder.run(None, {"mels": mel})[0].reshape(-1)
        pcm = np.clip(audio, -1.0, 1.0) * 32767.0
        return pcm.astype("<i2").tobytes(), [int(d) for d in durations.reshape(-1)]
