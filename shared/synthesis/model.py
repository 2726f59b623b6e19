"""Text-to-speech requests, jobs and results (seed 002).

``AudioOptions`` are the audio and timestamp options every synthesis route shares;
``SynthesizeRequest`` and ``SynthesisResponse`` are ``POST /synthesize``'s body and answer
(also a job's status), ``DialogueRequest`` the body of ``POST /synthesize/dialogue`` (here,
not with the dialogue's use case, so the function declares its routes without loading the
speech path). A ``SynthesisJob`` turns text into audio with a voice model or a
catalog voice; it moves from pending to processing to completed or failed, and its
transition methods return a new job. Word and syllable timestamps locate the text in the
audio, and each word in the text sent (``charStart``, ``charEnd``: code points).
``check_text`` and ``audio_settings`` are the request's rules: text limits, and a sample
rate the format can be written at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import (
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.audio.encode import output_rate
from shared.audio.formats import OutputFormat, UnsupportedFormatError, parse_output_format
from shared.config import Settings
from shared.errors import (
    AudioTooLongError,
    InvalidRequestError,
    TextTooLongError,
    UnsupportedAudioFormatError,
)
from shared.lexicons.references import LexiconIds
from shared.model import (
    DEFAULT_SAMPLE_RATE,
    DomainModel,
    NonNegativeCount,
    RequestModel,
    RequiredId,
    SampleRate,
    Seconds,
    TransitionTable,
    UnitScore,
    UtcDatetime,
    check_transition,
    is_unspoken_control,
    new_id,
    utcnow,
    with_changes,
)
from shared.providers.base import (
    MAX_PITCH,
    MAX_SPEED,
    MAX_VOLUME,
    MIN_PITCH,
    MIN_SPEED,
    MIN_VOLUME,
    AudioSettings,
)
from shared.providers.voices import DialogueTurn

if TYPE_CHECKING:
    from shared.voice_models.model import VoiceModel


class SynthesisStatus(StrEnum):
    """Where a synthesis job is."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


SYNTHESIS_TRANSITIONS: TransitionTable[SynthesisStatus] = {
    SynthesisStatus.PENDING: frozenset({SynthesisStatus.PROCESSING, SynthesisStatus.FAILED}),
    SynthesisStatus.PROCESSING: frozenset({SynthesisStatus.COMPLETED, SynthesisStatus.FAILED}),
}
"""Legal job moves; COMPLETED and FAILED are final."""


class TimestampGranularity(StrEnum):
    """Which timestamps a client asks for."""

    WORD = "word"
    SYLLABLE = "syllable"
    BOTH = "both"


@dataclass(frozen=True)
class ResolvedVoice:
    """A provider voice to synthesize with, the model it came from, and that model's settings.

    ``defaults`` holds the model's own ``sample_rate``, ``speed``, ``pitch`` and ``volume``,
    which a request's own values override.
    """

    provider: str
    voice_id: str
    language: str | None = None
    model: VoiceModel | None = None
    defaults: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        """Return what the client named: the model id, or ``provider:voice_id``."""
        return self.model.id if self.model else f"{self.provider}:{self.voice_id}"


UsDollars = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
"""An amount of money in US dollars: a cost, never negative."""


class SynthesisJob(DomainModel):
    """A request to synthesize ``text_content``; needs a voice model or a catalog voice."""

    id: RequiredId = Field(default_factory=new_id)
    user_id: RequiredId
    voice_model_id: str | None = None
    voice_id: str | None = None
    text_content: Annotated[str, Field(min_length=1)]
    text_hash: RequiredId
    config: dict[str, Any] = Field(default_factory=dict)
    output_format: OutputFormat = OutputFormat.WAV
    sample_rate: SampleRate = DEFAULT_SAMPLE_RATE
    status: SynthesisStatus = SynthesisStatus.PENDING
    progress: UnitScore = 0.0
    estimated_duration: NonNegativeCount | None = None
    cache_hit: bool = False
    error_message: str | None = None
    audio_file_id: str | None = None
    # What the provider billed for the job (none for a cache hit) and its cost in US
    # dollars at the price of the day, and the voice settings the provider could not
    # honour: kept with the job so that showing it later says what its answer said.
    billed_characters: NonNegativeCount | None = None
    cost: UsDollars | None = None
    unapplied: list[str] = Field(default_factory=list)
    created_at: UtcDatetime = Field(default_factory=utcnow)
    completed_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _has_a_voice(self) -> Self:
        if not self.voice_model_id and not self.voice_id:
            raise ValueError("a synthesis job needs voiceModelId or voiceId")
        return self

    def _move(self, target: SynthesisStatus) -> None:
        check_transition("synthesis job", SYNTHESIS_TRANSITIONS, self.status, target)

    def start(self) -> Self:
        """Return the job PROCESSING.

        Raises:
            InvalidStateTransitionError: the job is not PENDING.
        """
        self._move(SynthesisStatus.PROCESSING)
        return with_changes(self, status=SynthesisStatus.PROCESSING)

    def complete(
        self,
        *,
        audio_file_id: str,
        now: datetime,
        billed_characters: int,
        cost: float,
        cache_hit: bool = False,
        unapplied: Sequence[str] = (),
    ) -> Self:
        """Return the job COMPLETED at ``now`` with its audio file, bill and full progress.

        Raises:
            InvalidStateTransitionError: the job is not PROCESSING.
        """
        self._move(SynthesisStatus.COMPLETED)
        return with_changes(
            self,
            status=SynthesisStatus.COMPLETED,
            audio_file_id=audio_file_id,
            progress=1.0,
            cache_hit=cache_hit,
            billed_characters=billed_characters,
            cost=cost,
            unapplied=list(unapplied),
            completed_at=now,
        )

    def fail(self, message: str, now: datetime) -> Self:
        """Return the job FAILED at ``now`` with ``message``.

        Raises:
            InvalidStateTransitionError: the job is already COMPLETED or FAILED.
        """
        self._move(SynthesisStatus.FAILED)
        return with_changes(
            self, status=SynthesisStatus.FAILED, error_message=message, completed_at=now
        )


SPAN_UNIT = (
    "in Unicode code points (what Python's str indexes and a JSON string is made of; in "
    "JavaScript, Array.from(text) indexes code points, text.slice does UTF-16 units)"
)


class WordTimestamp(DomainModel):
    """Where a word sits in the audio (seconds from the start) and in the text sent.

    ``charStart``..``charEnd`` (end exclusive, in code points) is the word's span in what
    the request sent: ``text[charStart:charEnd]`` is the word for plain text; for SSML the
    span is where the word is written in the document (``AT&amp;T`` for the word "AT&T",
    a ``<sub>``'s content, not its alias); in a dialogue, in its own turn's text.
    """

    model_config = ConfigDict(frozen=True)

    text: Annotated[str, Field(min_length=1)]
    start: Seconds
    end: Seconds
    char_start: Annotated[
        NonNegativeCount, Field(description=f"Start of its span in the text sent, {SPAN_UNIT}")
    ]
    char_end: Annotated[
        NonNegativeCount,
        Field(description="End of its span in the text sent (exclusive), in code points"),
    ]
    speaker: Annotated[str | None, Field(description="The turn's speaker (dialogues only)")] = None
    turn_index: Annotated[
        NonNegativeCount | None,
        Field(description="The turn (0-based) whose text the span indexes (dialogues only)"),
    ] = None

    @model_validator(mode="after")
    def _starts_before_end(self) -> Self:
        if self.start > self.end:
            raise ValueError("start must not be after end")
        if self.char_start > self.char_end:
            raise ValueError("charStart must not be after charEnd")
        return self


class SyllableTimestamp(WordTimestamp):
    """Where a syllable sits in the audio, which word (0-based) it belongs to, and its
    span: its slice of its word's span (the word's whole span where the word's source is
    not its text: SSML with an entity or markup inside the word)."""

    word_index: NonNegativeCount


def _timestamps_schema(schema: dict[str, Any]) -> None:
    """Document ``SynthesisResponse.timestamps``: a mapping at run time (stored JSON,
    answered as it is), its words and syllables shaped as the models above."""

    def shape(model: type[DomainModel]) -> dict[str, Any]:
        described = model.model_json_schema(by_alias=True, mode="serialization")
        properties = described["properties"]
        for name in ("speaker", "turnIndex"):
            # Left out, not null, outside dialogues.
            optional = properties[name]
            (kind,) = (each for each in optional.pop("anyOf") if each != {"type": "null"})
            optional.pop("default")
            properties[name] = {**kind, **optional}
        return described

    schema.clear()
    schema["anyOf"] = [
        {
            "type": "object",
            "description": (
                "The words and syllables asked for (timestampGranularity). Each one's "
                f"charStart..charEnd is its slice of what the request sent, {SPAN_UNIT}: "
                "text.slice(charStart, charEnd) is off by one per emoji before the word, while "
                "Array.from(text).slice(charStart, charEnd).join('') is the word."
            ),
            "properties": {
                "words": {"type": "array", "items": shape(WordTimestamp)},
                "syllables": {"type": "array", "items": shape(SyllableTimestamp)},
            },
        },
        {"type": "null"},
    ]
    schema["default"] = None
    schema["title"] = "Timestamps"


class SynthesisMode(StrEnum):
    """How a multi-role dialogue is synthesized: by the provider in one call, or per turn."""

    NATIVE = "native"
    SEGMENTED = "segmented"


Speed = Annotated[float, Field(ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)]


Pitch = Annotated[float, Field(ge=MIN_PITCH, le=MAX_PITCH, allow_inf_nan=False)]


Volume = Annotated[float, Field(ge=MIN_VOLUME, le=MAX_VOLUME, allow_inf_nan=False)]


Rate = Annotated[int, Field(ge=8_000, le=48_000)]


class AudioOptions(RequestModel):
    """How the result should sound and be delivered (shared by every synthesis route)."""

    output_format: Annotated[
        OutputFormat,
        Field(
            description="wav, mp3, flac, ogg_opus or pcm, in any case; opus and ogg also name "
            "ogg_opus. Others (aac) are refused with 415 and this list."
        ),
    ] = OutputFormat.WAV
    sample_rate: Rate | None = None
    speed: Speed = 1.0
    pitch: Pitch = 1.0
    volume: Volume = 1.0
    include_timestamps: bool = True
    timestamp_granularity: TimestampGranularity = TimestampGranularity.BOTH
    # Where to POST the finished job (signed), besides polling GET /synthesis/jobs/{id}.
    callback_url: Annotated[str, Field(min_length=1, max_length=2048)] | None = None

    @field_validator("output_format", mode="before")
    @classmethod
    def _format_by_any_name(cls, value: Any) -> Any:
        return output_format_of(value)


def _sent(data: Any, *names: str) -> str | None:
    """Return the first string of ``names`` in ``data`` (a request body as sent, before
    request models strip it), or None without one."""
    if isinstance(data, dict):
        for name in names:
            sent = data.get(name)
            if isinstance(sent, str):
                return sent
    return None


def _lead_of(sent: str | None) -> int:
    """Return how many whitespace characters ``sent`` starts with (0 for None)."""
    return 0 if sent is None else len(sent) - len(sent.lstrip())


class SynthesizeRequest(AudioOptions):
    """Body of ``POST /synthesize``: ``text`` or ``ssml``, and a voice (default: active model)."""

    text: str | None = None
    ssml: str | None = None
    voice: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    lexicon_ids: LexiconIds | None = None
    _sent: str | None = PrivateAttr(default=None)  # the text (or SSML) before stripping

    @model_validator(mode="wrap")
    @classmethod
    def _keep_sent(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        request = handler(data)
        request._sent = _sent(data, "text", "ssml")
        return request

    @property
    def lead(self) -> int:
        """Return how many whitespace characters were sent before the text (or SSML), which
        parsing strips: the words' spans index what was sent, so they count them."""
        return _lead_of(self._sent)

    @property
    def sent_length(self) -> int:
        """Return how many characters the text (or SSML) had as sent, whitespace around it
        included: the length limit counts them, as a client counts its own request."""
        if self._sent is not None:
            return len(self._sent)
        return len(self.text if self.text is not None else self.ssml or "")


MAX_PAUSE_MS = 10_000
"""The longest pause between a dialogue's turns."""


class DialogueTurnRequest(DialogueTurn):
    """One turn of ``POST /synthesize/dialogue``, with lexicons of its own."""

    lexicon_ids: LexiconIds | None = None
    _sent: str | None = PrivateAttr(default=None)  # the turn's text before stripping

    @model_validator(mode="wrap")
    @classmethod
    def _keep_sent(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        turn = handler(data)
        turn._sent = _sent(data, "text")
        return turn

    @field_validator("text")
    @classmethod
    def _says_something(cls, text: str) -> str:
        if says_nothing(text):
            raise ValueError("the text holds only control characters")
        return text

    @property
    def lead(self) -> int:
        """Return how many whitespace characters were sent before the turn's text."""
        return _lead_of(self._sent)

    @property
    def sent_length(self) -> int:
        """Return how many characters the turn's text had as sent, whitespace included."""
        return len(self._sent if self._sent is not None else self.text)


class DialogueRequest(AudioOptions):
    """Body of ``POST /synthesize/dialogue``."""

    turns: Annotated[list[DialogueTurnRequest], Field(min_length=1)]
    mode: SynthesisMode = SynthesisMode.SEGMENTED
    pause_ms: Annotated[int, Field(ge=0, le=MAX_PAUSE_MS)] = 300
    # Applied to every turn, after the turn's own.
    lexicon_ids: LexiconIds | None = None


class SynthesisResponse(DomainModel):
    """The answer of a synthesis: the job, and its file once there is one.

    ``size`` is the file's size in bytes and ``expiresAt`` when the file is deleted (as
    ``GET /files/{id}/info`` says them); ``downloadUrl`` is a signed URL that works until
    ``downloadUrlExpiresAt``, usually well before the file expires. ``billedCharacters``
    and ``cost`` (US dollars at ``VOICE_SYNTHESIS_PRICE_PER_MILLION_CHARS``) are what the
    provider charged once the job completed: nothing for a cache hit, null until then.
    """

    job_id: str
    status: SynthesisStatus
    voice: str
    provider: str
    format: OutputFormat
    audio_file_id: str | None = None
    download_url: str | None = None
    download_url_expires_at: datetime | None = None
    duration: float | None = None
    sample_rate: int | None = None
    size: int | None = None
    checksum: str | None = None
    cache_hit: bool = False
    billed_characters: int | None = None
    cost: float | None = None
    expires_at: datetime | None = None
    timestamps: Annotated[dict[str, Any] | None, Field(json_schema_extra=_timestamps_schema)] = None
    unapplied: list[str] = Field(default_factory=list)
    # The pronunciation lexicons applied, each as id@version, and the graphemes whose rule
    # this voice's provider cannot say (IPA only, on a provider without phoneme input).
    lexicons: list[str] = Field(default_factory=list)
    unapplied_rules: list[str] = Field(default_factory=list)
    progress: float = 0.0
    estimated_duration: int | None = None
    error: str | None = None
    mode: str | None = None
    fallback_reason: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None


def output_format_of(value: Any) -> Any:
    """Return the format a request names (any case, or an alias such as ``opus``).

    Raises the pydantic error that ``shared.http`` answers with 415 and the supported
    formats when no encoder here writes it; leaves non-strings to the field's validation.
    """
    if not isinstance(value, str):
        return value
    try:
        return parse_output_format(value)
    except UnsupportedFormatError as exc:
        raise PydanticCustomError(UnsupportedAudioFormatError.validation_type, str(exc)) from None


def says_nothing(text: str) -> bool:
    """Return whether ``text`` holds nothing but whitespace and control characters that say
    nothing (``is_unspoken_control``)."""
    return all(char.isspace() or is_unspoken_control(char) for char in text)


def check_text(
    text: str, settings: Settings, *, length: int | None = None, counted: str = "Text is"
) -> None:
    """Raise InvalidRequestError for empty ``text`` (``says_nothing``), TextTooLongError
    when ``length`` (by default the text's) is over the limit.

    ``length`` is what the client can count in its own request (the characters it sent),
    and the message states it after ``counted``, which says what was counted.
    """
    if not text.strip():
        raise InvalidRequestError("Text must not be empty")
    if says_nothing(text):
        raise InvalidRequestError("Text must not be empty: it holds only control characters")
    limit = settings.synthesis_max_chars
    size = len(text) if length is None else length
    if size > limit:
        raise TextTooLongError(f"{counted} {size} characters; the limit is {limit} characters")


CHARS_PER_SECOND = 14.0
"""Typical speech at speed 1.0, for duration estimates."""


def estimate_audio_seconds(
    characters: int, speed: float, *, pauses: float = 0.0, slowest_rate: float = 1.0
) -> float:
    """Return about how many seconds of audio speaking ``characters`` makes.

    ``pauses`` are the seconds of breaks asked for; ``slowest_rate`` the slowest SSML
    prosody rate (every character is taken at it, so the estimate does not fall short).
    """
    return characters / CHARS_PER_SECOND / (speed * slowest_rate) + pauses


def check_audio_length(seconds: float, settings: Settings, *, at_once: bool) -> None:
    """Raise AudioTooLongError when ``seconds`` of audio exceed what a request may make.

    ``at_once``: the request is answered in its own call, bounded more tightly.
    """
    limit = settings.synthesis_sync_max_audio_seconds if at_once else None
    overall = settings.synthesis_max_audio_seconds
    if seconds > overall:
        raise AudioTooLongError(
            f"This request would make about {seconds:.0f} s of audio; the limit is "
            f"{overall:.0f} s (pauses and slow rates count)"
        )
    if limit is not None and seconds > limit:
        raise AudioTooLongError(
            f"This request would make about {seconds:.0f} s of audio; at most {limit:.0f} s "
            "are answered at once (send plain text for an async job, or split it)"
        )


def audio_settings(
    options: AudioOptions, defaults: Mapping[str, Any] | None = None
) -> AudioSettings:
    """Return the provider settings for ``options`` (a rate the format can be written at).

    ``defaults`` (a voice model's ``sample_rate``, ``speed``, ``pitch``, ``volume``) stand
    where the request did not set a value; the model's rate is the audio's own rate, which
    the format may round to one it supports. Raises InvalidRequestError for a sample rate
    the format does not support.
    """
    given = options.model_fields_set
    defaults = defaults or {}
    requested = options.sample_rate
    source = int(defaults.get("sample_rate") or DEFAULT_SAMPLE_RATE)
    try:
        rate = output_rate(options.output_format, requested or source, requested)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None

    def chosen(name: str) -> float:
        value = getattr(options, name)
        return float(value if name in given else defaults.get(name, value))

    return AudioSettings(
        sample_rate=rate, speed=chosen("speed"), pitch=chosen("pitch"), volume=chosen("volume")
    )
