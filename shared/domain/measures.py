"""Constrained number types shared by the audio entities.

Sample rates, 0..1 scores and durations appear in several seeds; declaring each rule once
keeps every entity refusing the same bad values (an 8 Hz sample rate, a quality of 1.2, a
negative duration, NaN).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
DEFAULT_SAMPLE_RATE = 22_050

SampleRate = Annotated[int, Field(ge=MIN_SAMPLE_RATE, le=MAX_SAMPLE_RATE)]
"""Audio sample rate in Hz, from telephone (8 kHz) to studio (192 kHz)."""

UnitScore = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
"""A score or fraction on the 0..1 scale (quality, progress, similarity)."""

Seconds = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
"""A non-negative, finite duration or offset in seconds."""

PositiveSeconds = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
"""A strictly positive, finite duration in seconds."""

NonNegativeCount = Annotated[int, Field(ge=0)]
"""A count or size that cannot go below zero (bytes, downloads, voices)."""
