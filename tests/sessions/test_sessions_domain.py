"""Session persistence over both document stores, config checks, the registry and backends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

from shared.errors import InvalidRequestError, InvalidStateTransitionError
from shared.model import new_id, utcnow
from shared.providers import ProviderRegistry
from shared.providers.espeak import EspeakProvider
from shared.sessions.agents import AgentContext
from shared.sessions.backends import (
    LiveSessions,
    NativeBackendProvider,
    SessionLimitError,
    UserSessionLimitError,
)
from shared.sessions.config import SessionDefaults, parse_session_config
from shared.sessions.metrics import SessionMetrics, turn_metrics
from shared.sessions.model import (
    ConnectionState,
    ConversationLine,
    ConversationRole,
    HealthStatus,
    PipelineState,
    UserConnection,
    VoiceSession,
)
from shared.sessions.pipecat_backend import PipecatBackendProvider
from shared.sessions.pipeline import embedded_s2s
from shared.sessions.registry import BackendRegistry, UnknownBackendError
from shared.sessions.repository import (
    SessionNotFoundError,
    SessionRepository,
    SessionTakenOverError,
)
from shared.sessions.s2s import S2SCatalog
from shared.sessions.services import AgentCatalog, SessionServices
from shared.sessions.tts import ConfiguredVoiceResolver
from shared.speech import SpeechRegistry
from shared.store.base import DocumentStore
from shared.store.firestore import FirestoreDocumentStore
from shared.store.sqlite import SqliteDocumentStore
from tests.conftest import new_firestore_client, reset_firestore


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulator)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    if request.param == "sqlite":
        adapter: DocumentStore = SqliteDocumentStore(tmp_path / "store.sqlite3")
    else:
        emulator = request.getfixturevalue("firestore_emulator")
        reset_firestore(emulator)
        adapter = FirestoreDocumentStore(new_firestore_client())
    try:
        yield adapter
    finally:
        adapter.close()


def new_session(user: str = "u1", connection: str = "c1") -> VoiceSession:
    return VoiceSession(
        id=new_id(),
        backend_id="native-test",
        user_id=user,
        connection_id=connection,
        config={"backend": "native"},
        history=(ConversationLine(role=ConversationRole.USER, text="Hi"),),
    )


def test_active_sessions_persist_are_claimed_and_completed_ones_vanish(store):
    repository = SessionRepository(store, resume_window=timedelta(minutes=5))
    session = new_session()
    repository.create(session)
    stored = repository.get(session.id)
    assert stored is not None
    assert stored.history == session.history
    assert stored.config == {"backend": "native"}

    with pytest.raises(SessionNotFoundError):
        repository.claim(session.id, user_id="someone-else", connection_id="c2", now=utcnow())
    claimed = repository.claim(session.id, user_id="u1", connection_id="c2", now=utcnow())
    assert claimed.connection_id == "c2"
    # The old connection can no longer write; the new one can.
    with pytest.raises(SessionTakenOverError):
        repository.save(session.move_to(PipelineState.LISTENING, utcnow()))
    repository.save(claimed.move_to(PipelineState.LISTENING, utcnow()))
    assert repository.get(session.id).pipeline_state is PipelineState.LISTENING
    repository.save(claimed.complete(utcnow()))
    assert repository.get(session.id) is None


def test_a_config_given_with_a_claim_is_stored_by_the_claim_itself(store):
    # The connection that resumed with a new config may drop before its first save; the
    # next resume must still get that config (the old connection can no longer save).
    repository = SessionRepository(store, resume_window=timedelta(minutes=5))
    session = new_session()
    repository.create(session)
    changed = {"backend": "native", "audio": {"sampleRate": 8000}}
    repository.claim(session.id, user_id="u1", connection_id="c2", now=utcnow(), config=changed)
    assert repository.get(session.id).config == changed
    kept = repository.claim(session.id, user_id="u1", connection_id="c3", now=utcnow())
    assert kept.config == changed


def test_a_session_gone_longer_than_the_resume_window_cannot_be_claimed(store):
    repository = SessionRepository(store, resume_window=timedelta(minutes=5))
    session = new_session()
    repository.create(session)
    later = utcnow() + timedelta(minutes=6)
    with pytest.raises(SessionNotFoundError):
        repository.claim(session.id, user_id="u1", connection_id="c2", now=later)
    assert repository.get(session.id) is None


def services_for(tmp_path: Path, whisper) -> SessionServices:
    defaults = SessionDefaults()
    holder: list[SessionServices] = []
    services = SessionServices(
        speech=SpeechRegistry.of([whisper]),
        tts=ProviderRegistry.of([EspeakProvider(variant_languages=[])]),
        agents=AgentCatalog(),
        voices=ConfiguredVoiceResolver("espeak", "en-US"),
        repository=SessionRepository(
            SqliteDocumentStore(tmp_path / "s.sqlite3"), resume_window=timedelta(minutes=5)
        ),
        metrics=SessionMetrics(),
        s2s=S2SCatalog({"embedded": lambda: embedded_s2s(lambda: holder[0], defaults)}),
    )
    holder.append(services)
    return services


class Quiet:
    kind = "websocket"

    async def send_event(self, payload):
        return None

    async def send_audio(self, pcm):
        return None

    async def close(self, code, reason):
        return None


def test_backend_states_limits_and_health(tmp_path, whisper):
    services = services_for(tmp_path, whisper)
    provider = NativeBackendProvider(services, max_concurrent_sessions=2)
    registry = BackendRegistry()
    registry.register(provider)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(NativeBackendProvider(services))
    with pytest.raises(UnknownBackendError):
        registry.get("livekit")
    described = registry.describe()[0]
    assert described["capabilities"]["maxConcurrentSessions"] == 2
    assert "pipeline" in described["configSchema"]["properties"]

    async def scenario():
        backend = await provider.create_backend("b1")
        assert backend.connection_state is ConnectionState.DISCONNECTED
        assert (await backend.health_check()).status is HealthStatus.UNHEALTHY
        await backend.start()
        assert backend.connection_state is ConnectionState.CONNECTED
        config = parse_session_config({}, SessionDefaults())
        first = await backend.create_session(config, UserConnection(user_id="a"), Quiet())
        await backend.create_session(config, UserConnection(user_id="b"), Quiet())
        with pytest.raises(SessionLimitError):
            await backend.create_session(config, UserConnection(user_id="c"), Quiet())
        health = await backend.health_check()
        assert health.status is HealthStatus.DEGRADED  # full
        assert health.active_sessions == 2
        await first.close(complete=True)
        assert backend.active_session_count == 1
        assert (await backend.health_check()).status is HealthStatus.HEALTHY
        with pytest.raises(InvalidStateTransitionError):
            backend._move(ConnectionState.RECONNECTING)  # only from error
        await backend.stop()
        assert backend.connection_state is ConnectionState.DISCONNECTED
        assert backend.active_session_count == 0
        return first

    first = asyncio.run(scenario())
    assert first.tasks.running() == []
    assert services.repository.get(first.id) is None


class HeldEngine:
    """A session engine whose start waits for ``release`` when the config's metadata says
    ``hold``: a session caught starting, after the backend took it in."""

    release: asyncio.Event

    def __init__(self, config, services, parts, on_frame) -> None:
        self._hold = bool(config.metadata.get("hold"))

    async def start(self, context) -> None:
        if self._hold:
            await HeldEngine.release.wait()

    async def queue_input(self, frame) -> None:
        return None

    async def stop(self) -> None:
        return None


PLAIN = parse_session_config({}, SessionDefaults())
HELD = parse_session_config({"metadata": {"hold": True}}, SessionDefaults())
"""A session whose engine waits for ``HeldEngine.release`` before it has started."""


def connection(user_id: str) -> UserConnection:
    """Return a new connection of ``user_id`` (each start is a connection of its own)."""
    return UserConnection(user_id=user_id)


async def started_backend(provider: NativeBackendProvider):
    backend = await provider.create_backend(new_id())
    backend.build_engine = HeldEngine
    HeldEngine.release = asyncio.Event()
    await backend.start()
    return backend


async def until(condition) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def test_a_session_still_starting_takes_one_slot_of_the_limit(tmp_path, whisper):
    # A new session used to count twice while it started (its reservation, and itself
    # under another id): with a limit of 2, nobody could start beside it.
    services = services_for(tmp_path, whisper)
    provider = NativeBackendProvider(services, max_concurrent_sessions=2)

    async def scenario():
        backend = await started_backend(provider)
        starting = asyncio.create_task(backend.create_session(HELD, connection("a"), Quiet()))
        await until(lambda: backend.active_session_count == 1)  # taken in, still starting
        second = await backend.create_session(PLAIN, connection("b"), Quiet())
        with pytest.raises(SessionLimitError):
            await backend.create_session(PLAIN, connection("c"), Quiet())
        HeldEngine.release.set()
        first = await starting
        assert {first.id, second.id} == {s.id for s in backend.list_sessions()}
        await backend.stop()

    asyncio.run(scenario())


def test_one_user_runs_at_most_the_per_user_limit_and_a_resume_takes_no_slot(tmp_path, whisper):
    services = services_for(tmp_path, whisper)
    provider = NativeBackendProvider(services, max_concurrent_sessions=10, max_sessions_per_user=2)

    async def scenario():
        backend = await started_backend(provider)
        first = await backend.create_session(PLAIN, connection("ann"), Quiet())
        # A session still starting counts too: starts racing cannot pass the limit.
        starting = asyncio.create_task(backend.create_session(HELD, connection("ann"), Quiet()))
        await until(lambda: backend.active_session_count == 2)
        with pytest.raises(UserSessionLimitError) as refused:
            await backend.create_session(PLAIN, connection("ann"), Quiet())
        assert refused.value.code == "USER_SESSION_LIMIT_REACHED"
        assert "2 sessions" in refused.value.message
        HeldEngine.release.set()
        second = await starting
        # Other users are not held back by her sessions.
        other = await backend.create_session(PLAIN, connection("bob"), Quiet())
        # Her resume of a session she runs replaces it: no slot of its own.
        resumed = await backend.create_session(
            PLAIN, connection("ann"), Quiet(), resume_id=first.id
        )
        assert resumed.id == first.id
        assert first.closed
        assert backend.active_session_count == 3
        # Resumes racing each other for one session share its slot too.
        HeldEngine.release.clear()
        await second.close(complete=False)
        taking = asyncio.create_task(
            backend.create_session(HELD, connection("ann"), Quiet(), resume_id=second.id)
        )
        await until(lambda: backend.active_session_count == 3)  # taken in, still starting
        racing = asyncio.create_task(
            backend.create_session(PLAIN, connection("ann"), Quiet(), resume_id=second.id)
        )
        await asyncio.sleep(0.05)
        assert not racing.done()  # admitted: it waits for the one before to start
        HeldEngine.release.set()
        taken, latest = await asyncio.gather(taking, racing)
        assert taken.closed
        assert latest.id == second.id
        assert not latest.closed
        with pytest.raises(UserSessionLimitError):
            await backend.create_session(PLAIN, connection("ann"), Quiet())
        # A session she stops frees its slot.
        await resumed.close(complete=True)
        await backend.create_session(PLAIN, connection("ann"), Quiet())
        await other.close(complete=True)
        await backend.stop()

    asyncio.run(scenario())
    exposition = services.metrics.exposition().decode()
    assert 'voice_sessions_refused_total{reason="user_limit"} 2.0' in exposition


def test_config_defaults_and_what_the_backend_refuses(tmp_path, whisper):
    services = services_for(tmp_path, whisper)
    provider = NativeBackendProvider(services)
    config = parse_session_config({}, SessionDefaults())
    assert config.pipeline.effective_processing_order() == ("vad", "turn_detection", "stt", "tts")
    assert config.audio.output_rate == 16_000
    slow = parse_session_config({"pipeline": {"latencyTarget": 0.05}}, SessionDefaults())
    with pytest.raises(InvalidRequestError) as refused:
        provider.validate_config(slow)
    assert refused.value.details[0]["field"] == "pipeline.latencyTarget"
    misordered = parse_session_config(
        {"pipeline": {"processingOrder": ["turn_detection", "vad", "stt", "tts"]}},
        SessionDefaults(),
    )
    from shared.sessions.pipeline import check_config

    with pytest.raises(InvalidRequestError) as refused:
        check_config(misordered, services)
    assert refused.value.details[0]["field"] == "pipeline.processingOrder"
    placed = parse_session_config(
        {
            "pipeline": {
                "customProcessors": [
                    {"name": "boost", "kind": "gain", "options": {"gainDb": 3}},
                    {"name": "off", "kind": "gain", "enabled": False},
                ],
                "processingOrder": ["boost", "vad", "turn_detection", "stt", "tts"],
            }
        },
        SessionDefaults(),
    )
    check_config(placed, services)


def test_a_named_voice_chooses_the_tts_provider_unless_the_pipeline_names_one(tmp_path, whisper):
    from shared.sessions.pipeline import check_config

    services = services_for(tmp_path, whisper)
    defaults = SessionDefaults()
    # No ttsProvider: the voice's own provider speaks (it had to be named twice before).
    named = parse_session_config({"voice": "piper:en_US-lessac-medium"}, defaults)
    assert named.pipeline.tts_provider == "piper"
    with pytest.raises(InvalidRequestError) as refused:  # not enabled in these services
        check_config(named, services)
    assert [d["field"] for d in refused.value.details] == ["pipeline.ttsProvider"]
    assert parse_session_config({"voice": "espeak:en-GB"}, defaults).pipeline.tts_provider == (
        "espeak"
    )
    check_config(parse_session_config({"voice": "espeak:en-GB"}, defaults), services)
    # A clone, a language tag or a model id name no provider: the default one.
    for voice in ("clone:pm-1", "en-GB", "a-model-id", None):
        config = parse_session_config({"voice": voice}, defaults)
        assert config.pipeline.tts_provider == defaults.tts_provider, voice
    # A ttsProvider given is kept, and a voice of another provider is refused.
    mixed = parse_session_config(
        {"voice": "piper:en_US-lessac-medium", "pipeline": {"ttsProvider": "espeak"}}, defaults
    )
    with pytest.raises(InvalidRequestError) as refused:
        check_config(mixed, services)
    assert [d["field"] for d in refused.value.details] == ["voice"]


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ({"n": 2**64}, "64 bits"),  # Firestore holds none larger: stored here, 500 there
        ({"n": float("nan")}, "finite"),
        ({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {}}}}}}}}}, "deeper"),
        ({str(key): key for key in range(300)}, "keys and elements"),
        ({"big": "x" * (17 * 1024)}, "16384 bytes"),
    ],
)
def test_session_metadata_is_free_form_json_any_store_holds(metadata, problem):
    from shared.sessions.protocol import ProtocolError, parse_client_message

    with pytest.raises(InvalidRequestError) as refused:
        parse_session_config({"metadata": metadata}, SessionDefaults())
    assert problem in str(refused.value.details)
    update = json.dumps({"type": "update_metadata", "metadata": metadata})
    with pytest.raises(ProtocolError, match=problem):
        parse_client_message(update)


def test_turn_figures_need_both_of_their_marks():
    marks = {"speech_ended": 1.0, "turn_ended": 1.5, "stt_started": 1.5, "first_audio": 2.25}
    assert turn_metrics(marks) == {"vad_stop_delay": 0.5, "end_of_speech_to_first_audio": 1.25}


def test_stages_follow_the_processing_order_and_skip_disabled_processors(tmp_path, whisper):
    from shared.sessions.conversation import Conversation
    from shared.sessions.pipeline import SessionParts, build_stages
    from shared.sessions.processors import PipelineContext, SessionTasks
    from shared.sessions.tts import VoiceChoice

    services = services_for(tmp_path, whisper)

    def stage_names(pipeline: dict) -> list[str]:
        config = parse_session_config({"pipeline": pipeline}, SessionDefaults())
        parts = SessionParts(
            context=PipelineContext("s", SessionTasks("s")),
            conversation=Conversation(),
            output=Quiet(),
            user_id="u",
            voice=VoiceChoice("espeak", "en-US"),
            agent_context=lambda history: AgentContext(session_id="s", user_id="u"),
        )
        return [stage.name for stage in build_stages(config, services, parts)]

    processors = [
        {"name": "second", "kind": "gain", "order": 2},
        {"name": "first", "kind": "gain", "order": 1},
        {"name": "off", "kind": "gain", "order": 0, "enabled": False},
    ]
    assert stage_names({"customProcessors": processors}) == [
        "first",
        "second",
        "vad",
        "turn_detection",
        "stt",
        "agent",
        "tts",
        "output",
    ]
    placed = {
        "customProcessors": processors,
        "processingOrder": ["vad", "turn_detection", "stt", "first", "tts", "second"],
    }
    assert stage_names(placed) == [
        "vad",
        "turn_detection",
        "stt",
        "agent",
        "first",
        "tts",
        "second",
        "output",
    ]


def test_each_provider_publishes_a_schema_of_the_configs_it_runs(tmp_path, whisper):
    services = services_for(tmp_path, whisper)
    registry = BackendRegistry()
    registry.register(NativeBackendProvider(services))
    registry.register(PipecatBackendProvider(services))
    schemas = {item["name"]: item["configSchema"] for item in registry.describe()}
    s2s = {"pipeline": {"type": "s2s", "s2sProvider": "embedded"}}
    stt_tts = {
        "pipeline": {
            "type": "stt_tts",
            "sttProvider": "whisper",
            "ttsProvider": "espeak",
            "latencyTarget": 0.5,
        }
    }
    # The schema describes what a client sends: {} is a whole config, as the server
    # fills in the rest.
    # native runs both pipeline types; its schema and its validation accept both.
    for config in ({}, {"pipeline": {"type": "s2s"}}, s2s, stt_tts):
        jsonschema.validate(config, schemas["native"])
        registry.get("native").validate_config(parse_session_config(config, SessionDefaults()))
    # pipecat runs stt_tts only: its schema refuses s2s, as its validation does.
    jsonschema.validate(stt_tts, schemas["pipecat"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(s2s, schemas["pipecat"])
    with pytest.raises(InvalidRequestError):
        registry.get("pipecat").validate_config(parse_session_config(s2s, SessionDefaults()))
    # Both refuse what no provider runs, as the server does.
    for refused in ({"surprise": True}, {"pipeline": {"latencyTarget": 0}}):
        for schema in schemas.values():
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(refused, schema)
        with pytest.raises(InvalidRequestError):
            parse_session_config(refused, SessionDefaults())


def test_the_active_gauge_counts_the_instances_sessions_on_every_backend(tmp_path, whisper):
    # Each backend set voice_sessions_active to its own count: with a session on each of
    # two backends the instance showed 1.
    services = services_for(tmp_path, whisper)
    live = LiveSessions()
    first_provider = NativeBackendProvider(services, live=live)
    second_provider = NativeBackendProvider(services, live=live)

    def active() -> float | None:
        return services.metrics.registry.get_sample_value("voice_sessions_active")

    async def scenario():
        first = await started_backend(first_provider)
        second = await started_backend(second_provider)
        HeldEngine.release.set()
        one = await first.create_session(PLAIN, connection("a"), Quiet())
        assert active() == 1
        await second.create_session(PLAIN, connection("b"), Quiet())
        assert active() == 2
        await one.close(complete=True)
        assert active() == 1
        await first.stop()
        await second.stop()

    asyncio.run(scenario())


async def both_backends(services: SessionServices, **limits: int):
    """Return a native and a pipecat backend of one instance (one ``LiveSessions``), their
    sessions run by ``HeldEngine``, as the service builds them."""
    live = LiveSessions()
    native = await started_backend(NativeBackendProvider(services, live=live, **limits))
    pipecat = await started_backend(PipecatBackendProvider(services, live=live, **limits))
    return native, pipecat


def test_the_session_limit_counts_the_instances_sessions_on_every_backend(tmp_path, whisper):
    # Each backend counted only its own sessions: an instance running both let in twice
    # VOICE_SESSIONS_MAX_CONCURRENT.
    services = services_for(tmp_path, whisper)

    async def scenario():
        native, pipecat = await both_backends(services, max_concurrent_sessions=2)
        # One still starting on native counts once, beside one running on pipecat.
        starting = asyncio.create_task(native.create_session(HELD, connection("a"), Quiet()))
        await until(lambda: native.active_session_count == 1)
        running = await pipecat.create_session(PLAIN, connection("b"), Quiet())
        for backend in (native, pipecat):
            with pytest.raises(SessionLimitError):
                await backend.create_session(PLAIN, connection("c"), Quiet())
        # A backend's health is its own sessions, its fullness the instance's.
        health = await native.health_check()
        assert (health.active_sessions, health.status) == (1, HealthStatus.DEGRADED)
        HeldEngine.release.set()
        first = await starting
        await running.close(complete=True)
        # The slot freed on pipecat is free on native too.
        await native.create_session(PLAIN, connection("c"), Quiet())
        with pytest.raises(SessionLimitError):
            await pipecat.create_session(PLAIN, connection("d"), Quiet())
        await first.close(complete=True)
        await pipecat.create_session(PLAIN, connection("d"), Quiet())
        await native.stop()
        await pipecat.stop()

    asyncio.run(scenario())
    exposition = services.metrics.exposition().decode()
    assert 'voice_sessions_refused_total{reason="limit"} 3.0' in exposition


def test_the_per_user_limit_counts_her_sessions_on_every_backend(tmp_path, whisper):
    services = services_for(tmp_path, whisper)

    async def scenario():
        native, pipecat = await both_backends(
            services, max_concurrent_sessions=10, max_sessions_per_user=2
        )
        first = await native.create_session(PLAIN, connection("ann"), Quiet())
        starting = asyncio.create_task(pipecat.create_session(HELD, connection("ann"), Quiet()))
        await until(lambda: pipecat.active_session_count == 1)  # taken in, still starting
        for backend in (native, pipecat):
            with pytest.raises(UserSessionLimitError) as refused:
                await backend.create_session(PLAIN, connection("ann"), Quiet())
            assert "2 sessions" in refused.value.message
        # Other users are not held back by hers.
        await pipecat.create_session(PLAIN, connection("bob"), Quiet())
        HeldEngine.release.set()
        second = await starting
        await second.close(complete=True)
        await pipecat.create_session(PLAIN, connection("ann"), Quiet())
        await first.close(complete=True)
        await native.stop()
        await pipecat.stop()

    asyncio.run(scenario())
    exposition = services.metrics.exposition().decode()
    assert 'voice_sessions_refused_total{reason="user_limit"} 2.0' in exposition


def test_a_resume_moving_a_session_to_the_other_backend_keeps_its_one_slot(tmp_path, whisper):
    services = services_for(tmp_path, whisper)

    async def scenario():
        native, pipecat = await both_backends(
            services, max_concurrent_sessions=2, max_sessions_per_user=1
        )
        HeldEngine.release.set()
        moving = await native.create_session(PLAIN, connection("ann"), Quiet())
        await pipecat.create_session(PLAIN, connection("bob"), Quiet())
        # The instance is full and ann at her limit: her resume on pipecat takes her
        # session's slot over, and holds only that one while it starts.
        HeldEngine.release.clear()
        resuming = asyncio.create_task(
            pipecat.create_session(HELD, connection("ann"), Quiet(), resume_id=moving.id)
        )
        await until(lambda: moving.closed)
        for backend in (native, pipecat):
            with pytest.raises(SessionLimitError):
                await backend.create_session(PLAIN, connection("cid"), Quiet())
        HeldEngine.release.set()
        moved = await resuming
        assert (moved.id, native.active_session_count, pipecat.active_session_count) == (
            moving.id,
            0,
            2,
        )
        # Moved, it still holds one slot of the instance's two, and one of ann's one.
        for backend in (native, pipecat):
            with pytest.raises(SessionLimitError):
                await backend.create_session(PLAIN, connection("cid"), Quiet())
            with pytest.raises(UserSessionLimitError):
                await backend.create_session(PLAIN, connection("ann"), Quiet())
        # And back again, as one session of ann's.
        back = await native.create_session(PLAIN, connection("ann"), Quiet(), resume_id=moving.id)
        assert (native.active_session_count, pipecat.active_session_count) == (1, 1)
        await back.close(complete=True)
        await pipecat.create_session(PLAIN, connection("ann"), Quiet())
        await native.stop()
        await pipecat.stop()

    asyncio.run(scenario())
