"""Speech: from a line of text to PCM at the stream rate.

`text` cuts and prepares sentences, a `Voice` backend (chosen by `create_voice`) speaks one
sentence, and `resample` brings the result to the stream's rate without padding silence.
"""

from anchor.speech.base import SpeechError, Voice
from anchor.speech.registry import ENGINES, create_voice
from anchor.speech.resample import to_rate, trim_silence
from anchor.speech.text import detect_language, normalize_for_speech, split_sentences

__all__ = [
    "ENGINES",
    "SpeechError",
    "Voice",
    "create_voice",
    "detect_language",
    "normalize_for_speech",
    "split_sentences",
    "to_rate",
    "trim_silence",
]
