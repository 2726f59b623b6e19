"""How a voice-match model speaks: its eSpeak voice, language, pitch and speed.

The embedded trainer (``shared.samples.training.voice_match``) fits an eSpeak voice to a
user's samples; ``training-completed`` writes the result into the voice model's metadata
(``trainer: "voice-match"``, ``voiceId``, ``language``, ``pitch``, ``speed``). Synthesis
resolves such a model with ``matched_voice``: the voice and language as for any model, and
the pitch and speed multipliers that make eSpeak sound like the samples, applied on top of
whatever the request asks. This module is light on purpose: synthesis imports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VOICE_MATCH_TRAINER = "voice-match"
# The range the provider controls accept (shared.providers.base MIN_/MAX_PITCH, _SPEED).
PITCH_RANGE = (0.5, 2.0)
SPEED_RANGE = (0.25, 4.0)


@dataclass(frozen=True)
class MatchedVoice:
    """The eSpeak voice of a voice-match model and its fitted prosody multipliers."""

    voice_id: str
    language: str | None
    pitch: float
    speed: float


def matched_voice(metadata: Mapping[str, Any]) -> MatchedVoice | None:
    """Return the voice a voice-match model's ``metadata`` describes, or None for others.

    Values outside the providers' ranges (a hand-edited model) are clamped into them.
    """
    if metadata.get("trainer") != VOICE_MATCH_TRAINER:
        return None
    voice_id = metadata.get("voiceId")
    if not isinstance(voice_id, str) or not voice_id:
        return None
    language = metadata.get("language")
    return MatchedVoice(
        voice_id=voice_id,
        language=language if isinstance(language, str) and language else None,
        pitch=_multiplier(metadata.get("pitch"), PITCH_RANGE),
        speed=_multiplier(metadata.get("speed"), SPEED_RANGE),
    )


def _multiplier(value: Any, bounds: tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 1.0
    return min(max(float(value), bounds[0]), bounds[1])
