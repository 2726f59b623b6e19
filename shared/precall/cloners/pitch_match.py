"""The embedded cloner: a pitch match, honestly not a clone.

eSpeak NG cannot sound like a person. Offline, the best this cloner does is pick, among a
fixed set of eSpeak voices, the one whose speaking pitch is closest to the caller's, so a
deep voice is answered by a deep voice and a high one by a high one:

1. **The table** (once per process, about 0.3 s): each voice in ``CANDIDATES`` (US English
   with eSpeak's numbered male and female variants) reads ``REFERENCE_TEXT``; its median
   F0 and syllable rate are measured with ``shared.audio.prosody.measure_prosody``.
2. **The sample**: the same measurement of the decoded recording.
3. **The choice**: the candidate with the smallest distance in semitones between the two
   median F0s (ties: the closer syllable rate). The ratio of the caller's F0 and rate to the
   chosen voice's is kept as ``pitch`` and ``speed`` multipliers (clamped to 0.5..2).

The clone is that eSpeak voice: ``provider="espeak"``, ``providerVoiceId`` e.g.
``en-US+f3``, and a fresh ``clonedVoiceId`` (``pm-...``). Nothing is made at a provider,
so ``delete`` has nothing to give back. The samples capability's voice match (speaker
embeddings over every variant, fitted prosody) is the real embedded trainer; when it is on
main it replaces this cloner in ``shared.precall.cloners.build_cloner``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from shared.audio.decoding import decode
from shared.audio.prosody import measure_prosody
from shared.errors import PlatformError
from shared.model import new_id
from shared.precall.cloners import ClonedVoice, CloneFailedError, CloneRequest
from shared.providers.base import ProviderError, SynthesisRequest
from shared.providers.registry import ProviderRegistry

PROVIDER = "espeak"
LANGUAGE = "en-US"
CANDIDATES = tuple(
    [f"{LANGUAGE}+m{n}" for n in range(1, 9)] + [f"{LANGUAGE}+f{n}" for n in range(1, 6)]
)
REFERENCE_TEXT = (
    "Would you like to hear a short story? It was a quiet morning by the harbour, "
    "and the fishing boats were already far out at sea."
)
MULTIPLIER_RANGE = (0.5, 2.0)


@dataclass(frozen=True)
class VoicePitch:
    """One eSpeak voice's measured median pitch (Hz) and syllable rate (per second)."""

    voice_id: str
    f0_hz: float
    syllables_per_second: float


class EspeakPitchCloner:
    """Picks the eSpeak voice closest in pitch to the sample (see the module docstring)."""

    provider = PROVIDER

    def __init__(self, providers: ProviderRegistry) -> None:
        self._providers = providers
        self._table: list[VoicePitch] | None = None
        self._lock = threading.Lock()

    def clone(self, request: CloneRequest) -> ClonedVoice:
        """Return the closest eSpeak voice; raise CloneFailedError when the sample has no pitch."""
        try:
            audio = decode(request.audio)
        except PlatformError as exc:
            reason = f"The sample cannot be decoded: {exc.message}"
            raise CloneFailedError(reason, retryable=False) from exc
        prosody = measure_prosody(audio.samples, audio.sample_rate)
        if prosody.f0_median_hz is None:
            raise CloneFailedError("No voiced speech found in the sample", retryable=False)
        target_f0, target_rate = prosody.f0_median_hz, prosody.syllables_per_second
        best = min(
            self.table(),
            key=lambda voice: (
                round(abs(_semitones(target_f0, voice.f0_hz)), 1),
                abs(target_rate - voice.syllables_per_second),
            ),
        )
        return ClonedVoice(
            cloned_voice_id=f"pm-{new_id()}",
            provider=PROVIDER,
            provider_voice_id=best.voice_id,
            language=LANGUAGE,
            pitch=_clamped(target_f0 / best.f0_hz),
            speed=_clamped(target_rate / best.syllables_per_second) if target_rate else 1.0,
        )

    def delete(self, provider_voice_id: str) -> None:
        """Do nothing: an eSpeak voice is not made per clone."""
        del provider_voice_id

    def table(self) -> list[VoicePitch]:
        """Return the candidates' measured pitch, measuring them on first use.

        Raises CloneFailedError: eSpeak is not enabled or could not speak.
        """
        with self._lock:
            if self._table is None:
                self._table = self._measure()
            return self._table

    def _measure(self) -> list[VoicePitch]:
        try:
            espeak = self._providers.get(PROVIDER)
        except PlatformError as exc:
            raise CloneFailedError("The embedded cloner needs eSpeak NG", retryable=False) from exc
        table: list[VoicePitch] = []
        for voice_id in CANDIDATES:
            try:
                result = espeak.synthesize(SynthesisRequest(text=REFERENCE_TEXT, voice_id=voice_id))
            except ProviderError:
                continue  # a variant this eSpeak build lacks
            samples = np.frombuffer(result.pcm, dtype=np.int16).astype(np.float32) / 32768.0
            prosody = measure_prosody(samples, result.sample_rate)
            if prosody.f0_median_hz and prosody.syllables_per_second:
                table.append(
                    VoicePitch(voice_id, prosody.f0_median_hz, prosody.syllables_per_second)
                )
        if not table:
            raise CloneFailedError("eSpeak NG could not speak any candidate voice", retryable=True)
        return table


def _semitones(a_hz: float, b_hz: float) -> float:
    return 12.0 * math.log2(a_hz / b_hz)


def _clamped(value: float) -> float:
    low, high = MULTIPLIER_RANGE
    return round(min(max(value, low), high), 3)
