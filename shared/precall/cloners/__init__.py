"""Who turns a caller's voice sample into a voice the agent can speak with.

A ``VoiceCloner`` takes one recording (with, for a sample of the samples capability, the
voice target its processing measured) and returns a ``ClonedVoice``: the id the platform
shows for it (``clonedVoiceId``, spoken as ``voice: "clone:{id}"``), the TTS provider and
provider voice that speak it, and the language and prosody multipliers chosen. ``delete``
gives a provider-side voice back (paid clone slots are limited). Failures are
``CloneFailedError`` with a reason safe to show and whether a later attempt may succeed.

Two cloners: ``ElevenLabsCloner`` (instant voice cloning through the ElevenLabs provider,
production) and ``VoiceMatchCloner`` (embedded, offline: the samples capability's voice
match, not a clone; see its module). ``build.build_cloner`` picks one from the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from shared.precall.samples import URL_SAMPLE_LANGUAGE

if TYPE_CHECKING:
    from shared.samples.cloning import VoiceTarget


class CloneFailedError(Exception):
    """A clone attempt failed; ``reason`` is safe to show, ``retryable`` says if retrying helps."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True)
class CloneRequest:
    """One recording to clone, with the names and labels the provider keeps with it.

    ``language`` is the voice's (a stored sample's own, else en-US); ``target`` what the
    processing of a stored sample measured of the voice (None: measure the recording).
    """

    name: str
    audio: bytes
    filename: str
    content_type: str
    description: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    language: str = URL_SAMPLE_LANGUAGE
    target: VoiceTarget | None = None


@dataclass(frozen=True)
class ClonedVoice:
    """A voice made from a sample: its public id and who speaks it."""

    cloned_voice_id: str
    provider: str
    provider_voice_id: str
    language: str | None = None
    pitch: float = 1.0
    speed: float = 1.0


class VoiceCloner(Protocol):
    """Makes voices from samples, and gives provider-side voices back."""

    provider: str

    def clone(self, request: CloneRequest) -> ClonedVoice:
        """Return the voice made from ``request``; raise CloneFailedError."""
        ...

    def delete(self, provider_voice_id: str) -> None:
        """Delete the provider's voice (a missing one is not an error); raise CloneFailedError."""
        ...

    def warm(self, language: str) -> None:
        """Prepare what the first clone of ``language`` would otherwise wait for."""
        ...
