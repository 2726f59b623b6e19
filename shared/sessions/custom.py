"""Custom processors: the pipeline's extension hook (the seed's ``CustomProcessor``).

A session's config lists custom processors by ``name`` (unique), ``order`` (>= 0, lower
runs earlier), ``enabled`` and the registered ``kind`` that implements them, with
``options``. The service's ``ProcessorCatalog`` maps kinds to factories; a config naming an
unknown kind, or options its factory refuses, is refused before the session starts; so are
options whose keys or strings are not Unicode text (a JSON escape of a lone surrogate),
whatever the kind, before its factory sees them (``check_options``), and whether the
processor is enabled or not: its options are stored with the session's config either way.
Disabled processors are not built at all. An application adds its own kinds with
``catalog.register``; a processor is any ``FrameProcessor`` (handle the frames you want,
pass the rest on). Built in: ``gain``, which scales the audio passing it by ``gainDb``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from shared.audio.pcm import scale_volume
from shared.errors import InvalidRequestError, echoed, echoed_key
from shared.model import check_unicode_text
from shared.sessions.frames import Frame, InputAudioFrame, OutputAudioFrame
from shared.sessions.model import CustomProcessorConfig
from shared.sessions.processors import Direction, FrameProcessor

ProcessorFactory = Callable[[CustomProcessorConfig], FrameProcessor]
MAX_GAIN_DB = 40.0
# Unknown options a refusal names; the rest are counted ("and 995 more"), so a config with
# thousands of them gets a short message, not one of every key.
MAX_LISTED_OPTIONS = 5


class GainProcessor(FrameProcessor):
    """Scales audio by a fixed gain: the user's before the VAD (quiet microphones, hot
    ones), or the reply's after TTS."""

    def __init__(self, name: str, gain_db: float) -> None:
        super().__init__(name=name)
        self.factor = 10 ** (gain_db / 20)

    async def process_frame(self, frame: Frame, direction: Direction) -> None:
        if (
            isinstance(frame, InputAudioFrame | OutputAudioFrame)
            and direction is Direction.DOWNSTREAM
        ):
            # The same kind of frame, louder (a scored VAD window stays one).
            await self.push_frame(
                dataclasses.replace(frame, pcm=scale_volume(frame.pcm, self.factor))
            )
        else:
            await self.push_frame(frame, direction)


def _gain(config: CustomProcessorConfig) -> FrameProcessor:
    name = echoed(config.name)
    unknown = sorted(set(config.options) - {"gainDb"})
    if unknown:  # a misspelt option would otherwise be a gain of 0 dB, silently
        listed = ", ".join(echoed_key(option) for option in unknown[:MAX_LISTED_OPTIONS])
        if len(unknown) > MAX_LISTED_OPTIONS:
            listed += f" and {len(unknown) - MAX_LISTED_OPTIONS} more"
        raise InvalidRequestError(f"processor {name}: unknown options {listed}; gain takes gainDb")
    value: Any = config.options.get("gainDb", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(f"processor {name}: gainDb must be a number")
    if not -MAX_GAIN_DB <= value <= MAX_GAIN_DB:
        raise InvalidRequestError(f"processor {name}: gainDb must be within ±{MAX_GAIN_DB:g} dB")
    return GainProcessor(config.name, float(value))


class ProcessorCatalog:
    """Custom processor kinds by name."""

    def __init__(self) -> None:
        self._factories: dict[str, ProcessorFactory] = {"gain": _gain}

    def register(self, kind: str, factory: ProcessorFactory) -> None:
        """Make ``kind`` available to session configs.

        Raises:
            ValueError: ``kind`` is already registered.
        """
        if kind in self._factories:
            raise ValueError(f"custom processor kind {kind!r} is already registered")
        self._factories[kind] = factory

    @property
    def kinds(self) -> list[str]:
        """Return the registered kinds."""
        return sorted(self._factories)

    @staticmethod
    def check_options(config: CustomProcessorConfig) -> None:
        """Return None if ``config``'s options can be stored and named back: every key and
        string in them is Unicode text, whatever the kind (``build`` checks them first).

        Raises:
            InvalidRequestError: one is not (it holds a lone surrogate); the message names
                its path within the options.
        """
        try:
            check_unicode_text(config.options)
        except ValueError as exc:
            raise InvalidRequestError(f"processor {echoed(config.name)}: options {exc}") from None

    def build(self, config: CustomProcessorConfig) -> FrameProcessor:
        """Return a new processor for ``config`` named ``config.name``.

        Raises:
            InvalidRequestError: the kind is unknown or its options are invalid (a key or
                string that is not Unicode text, for every kind).
        """
        factory = self._factories.get(config.implementation)
        if factory is None:
            raise InvalidRequestError(
                f"Unknown custom processor kind {echoed(repr(config.implementation))}; "
                f"registered: {', '.join(self.kinds)}"
            )
        self.check_options(config)
        processor = factory(config)
        processor.name = config.name
        return processor
