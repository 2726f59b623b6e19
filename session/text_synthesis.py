"""Text that arrives in pieces, spoken sentence by sentence as ``POST /synthesize`` would.

``TextSynthesis`` is one connection's synthesis: ``open`` prepares it through the
synthesis capability (``shared.synthesis.prepare``: the voice resolved exactly as for
``/synthesize``, a voice model's settings, the pronunciation lexicons pinned to their
current versions), so a bad voice or setting is refused before any text is sent. Each
segment (a sentence, or what a flush released) is then either rendered with its word
timings (``render_text``, which also cuts a segment longer than the provider accepts) or,
when timings are off and the provider streams this request, read from
``TTSProvider.stream_pcm`` as the provider produces it. Each segment's use of a voice model
is recorded as synthesis records it (``record``, after the segment's audio has gone out).
Everything here blocks: the connection runs it on worker threads.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from session.text_protocol import StartSynthesis
from shared.audio.formats import OutputFormat
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.model import SynthesizeRequest
from shared.synthesis.prepare import Prepared, prepare
from shared.synthesis.pronunciation import pronounced_request
from shared.synthesis.render import render_text
from shared.synthesis.usage import record_model_use

# ``prepare`` checks a request with text; the connection's text arrives later, segment by
# segment, and this stands in for it while the voice, settings and lexicons are checked.
_PROBE_TEXT = "Hello."


@dataclass(frozen=True)
class Segment:
    """One segment's audio (PCM at the stream's rate) and its words, on its own clock."""

    pcm: bytes
    words: list[dict[str, Any]]


class TextSynthesis:
    """One connection's voice, settings and lexicons; see the module docstring."""

    def __init__(self, deps: SynthesisDeps, user_id: str, prepared: Prepared, *, timings: bool):
        self._deps = deps
        self._user_id = user_id
        self._prepared = prepared
        self.timings = timings

    @classmethod
    def open(cls, deps: SynthesisDeps, user_id: str, start: StartSynthesis) -> TextSynthesis:
        """Return the synthesis ``start`` asks for.

        Raises the errors of ``prepare``: voice and voice-model lookups, a voice model not
        ready, a provider not configured, an unsupported sample rate, unknown lexicons.
        """
        body = SynthesizeRequest(
            text=_PROBE_TEXT,
            voice=start.voice,
            output_format=OutputFormat.PCM,
            include_timestamps=start.timings,
            lexicon_ids=start.lexicon_ids,
            **start.model_dump(
                include=start.model_fields_set & {"sample_rate", "speed", "pitch", "volume"}
            ),
        )
        return cls(deps, user_id, prepare(deps, user_id, body), timings=start.timings)

    @property
    def voice(self) -> str:
        """Return the voice as ``provider:voiceId``."""
        voice = self._prepared.voice
        return f"{voice.provider}:{voice.voice_id}"

    @property
    def provider(self) -> str:
        """Return the provider's name."""
        return self._prepared.voice.provider

    @property
    def sample_rate(self) -> int:
        """Return the rate of every segment's PCM."""
        return self._prepared.settings.sample_rate

    def streams(self, text: str) -> bool:
        """Return whether ``text``'s audio comes from the provider's stream (no timings)."""
        if self.timings:
            return False
        return self._prepared.provider.streams(self._request(text))

    def render(self, text: str) -> Segment:
        """Return ``text`` spoken with its word timings (seconds from the segment's start).

        Raises:
            ProviderError: the provider failed or refused the text.
        """
        prepared = self._prepared
        rendered = render_text(
            prepared.provider,
            prepared.voice,
            text,
            prepared.settings,
            ssml=False,
            chunk_chars=self._deps.settings.synthesis_chunk_chars,
            lexicons=prepared.lexicons,
        )
        return Segment(rendered.pcm, [word.to_api() for word in rendered.words])

    def stream(self, text: str) -> Generator[bytes, None, None]:
        """Yield ``text``'s audio in pieces as the provider produces it (only when
        ``streams(text)``).

        Raises:
            ProviderError: the provider failed or refused the text.
        """
        # The providers' streams apply the request's volume as their synthesize does.
        for piece in self._prepared.provider.stream_pcm(self._request(text)):
            if piece:
                yield piece

    def _request(self, text: str) -> Any:
        prepared = self._prepared
        spoken = pronounced_request(
            prepared.provider,
            prepared.voice,
            text,
            prepared.settings,
            ssml=False,
            lexicons=prepared.lexicons,
        )
        return spoken.request.model_copy(update={"want_timings": False})

    def record(self, text: str, latency_ms: float) -> None:
        """Record one use of the voice's model for ``text`` (nothing for catalog voices),
        as synthesis records it; ``latency_ms`` is how long its audio took."""
        record_model_use(
            self._deps,
            self._prepared.voice,
            user_id=self._user_id,
            characters=len(text),
            latency_ms=latency_ms,
        )
