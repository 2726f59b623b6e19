"""eSpeak NG speech as float samples (and as mp3), for tests that measure real speech.

Renders through the platform's eSpeak provider rather than its own ctypes binding: the
engine is one global state per process, and a second binding would replace the
provider's audio callback for every later test.
"""

from __future__ import annotations

import functools

import lameenc
import numpy as np

from shared.audio.pcm import to_samples
from shared.providers.base import AudioSettings, SynthesisRequest
from shared.providers.espeak import EspeakProvider

RAINBOW = (
    "The rainbow is a division of white light into many beautiful colours. These take the "
    "shape of a long round arch, with its path high above, and its two ends apparently "
    "beyond the horizon."
)


@functools.cache
def _provider() -> EspeakProvider:
    return EspeakProvider(variant_languages=[])


def speak(
    text: str = RAINBOW,
    voice: str = "en-US",
    *,
    speed: float = 1.0,
    pitch: float = 1.0,
    sample_rate: int = 22_050,
) -> np.ndarray:
    """Return eSpeak's rendering of ``text`` as float32 samples in -1..1 at ``sample_rate``."""
    settings = AudioSettings(speed=speed, pitch=pitch, sample_rate=sample_rate)
    request = SynthesisRequest(text=text, voice_id=voice, settings=settings, want_timings=False)
    result = _provider().synthesize(request)
    return to_samples(result.pcm).astype(np.float32) / 32768


def lame_mp3(samples: np.ndarray, rate: int = 22_050) -> bytes:
    """Return mono float ``samples`` as a 64 kbps mp3 (bare frames, no tag, no Info frame)."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(64)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_quality(2)
    pcm = np.round(samples * 32767).astype("<i2").tobytes()
    return bytes(encoder.encode(pcm) + encoder.flush())
