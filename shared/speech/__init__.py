"""Speech-to-text: one interface for the embedded Whisper decoder and Google Cloud streaming."""

from shared.speech.base import (
    RecognitionStream,
    SpeechToText,
    SpeechToTextError,
    Transcript,
)
from shared.speech.registry import SpeechRegistry, SpeechSettings

__all__ = [
    "RecognitionStream",
    "SpeechRegistry",
    "SpeechSettings",
    "SpeechToText",
    "SpeechToTextError",
    "Transcript",
]
