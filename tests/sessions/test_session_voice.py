"""A session speaks with the user's active voice model unless its config names a voice."""

from __future__ import annotations

from shared import voice_models
from shared.catalog.repository import VoiceRepository
from shared.voice_models.activation import activate_voice_model
from shared.voice_models.crud import create_voice_model
from shared.voice_models.deps import Caller
from shared.voice_models.model import TTSProvider, VoiceModelCreate
from tests.sessions.support import Client
from tests.support.fake_http import FakeHttpServer
from tests.support.fake_tts_servers import ELEVENLABS_KEY, elevenlabs_app

RACHEL = "21m00Tcm4TlvDq8ikWAM"  # a voice of the fake ElevenLabs


def give_active_model(
    service, user: str, voice_id: str, provider: TTSProvider = TTSProvider.ESPEAK
) -> str:
    deps = service.container.platform.deps(voice_models.CAPABILITY)
    caller = Caller(user)
    model = create_voice_model(
        deps,
        caller,
        VoiceModelCreate(
            provider=provider,
            model_path=f"models/{user}/m1/model.bin",
            quality_score=0.9,
            metadata={"voiceId": voice_id},
        ),
    )
    if not model.is_active:
        activate_voice_model(deps, caller, model.id)
    return model.id


def test_a_session_speaks_with_the_users_active_voice_model(start_service):
    service = start_service()
    give_active_model(service, "vera", "en-GB")
    client = Client(service.url, service.token("vera"))
    assert client.start()["voice"] == "espeak:en-GB"
    client.close()
    # Someone without a model gets the service's default voice.
    other = Client(service.url, service.token("walt"))
    assert other.start()["voice"] == "espeak:en-US"
    other.close()


def test_a_voice_named_in_the_config_wins_over_the_active_model(start_service):
    service = start_service()
    model_id = give_active_model(service, "xena", "en-GB")
    client = Client(service.url, service.token("xena"))
    assert client.start({"voice": "espeak:fr-FR"})["voice"] == "espeak:fr-FR"
    client.close()
    # A voice model may be named by its id, like in POST /synthesize.
    named = Client(service.url, service.token("xena"))
    assert named.start({"voice": model_id})["voice"] == "espeak:en-GB"
    named.close()
    # Someone else's model is not theirs to speak with: the name is a provider voice then.
    stranger = Client(service.url, service.token("yuri"))
    assert stranger.start({"voice": model_id})["voice"] == f"espeak:{model_id}"
    stranger.close()


def test_a_voice_the_catalog_does_not_have_is_refused_at_start(start_service):
    service = start_service()
    before_sync = Client(service.url, service.token("zoe"))
    # Before the catalog's first sync the service cannot tell: the voice id, as given.
    assert before_sync.start({"voice": "espeak:xx-nowhere"})["voice"] == "espeak:xx-nowhere"
    before_sync.close()

    espeak = service.container.providers.get("espeak")
    VoiceRepository(service.container.store).upsert(espeak.list_voices())
    client = Client(service.url, service.token("zoe"))
    client.send({"type": "start", "config": {"voice": "espeak:xx-nowhere"}})
    error = client.wait_for("error")
    assert error["code"] == "VOICE_NOT_FOUND"  # told now, as POST /synthesize would, not
    assert "espeak:xx-nowhere" in error["message"]  # silence at the first reply
    assert not client.received.of("session.started")
    # A catalog voice, in any case, is the catalog's own id.
    assert client.start({"voice": "espeak:EN-us"})["voice"] == "espeak:en-US"
    client.close()


def test_a_named_tts_provider_without_a_voice_speaks_with_its_default_voice(start_service):
    with FakeHttpServer(elevenlabs_app()) as elevenlabs:
        service = start_service(
            providers="espeak,elevenlabs",
            elevenlabs_base_url=elevenlabs.url,
            elevenlabs_api_key=ELEVENLABS_KEY,
        )
        catalog = VoiceRepository(service.container.store)
        catalog.upsert(service.container.providers.get("espeak").list_voices())
        give_active_model(service, "quinn", "en-GB")  # an eSpeak model
        named = {"pipeline": {"ttsProvider": "elevenlabs"}}

        # No voice of that provider is known here yet: told at start, name a voice.
        unknown = Client(service.url, service.token("quinn"))
        unknown.send({"type": "start", "config": named})
        error = unknown.wait_for("error")
        assert error["code"] == "INVALID_CONFIG"
        assert error["details"][0]["field"] == "voice"
        assert "elevenlabs" in error["details"][0]["message"]
        unknown.close()

        catalog.upsert(service.container.providers.get("elevenlabs").list_voices())
        client = Client(service.url, service.token("quinn"))
        started = client.start(named)
        # Not the eSpeak model: the provider the config named, its voice for en-US.
        assert started["voice"].startswith("elevenlabs:")
        assert started["config"]["pipeline"]["ttsProvider"] == "elevenlabs"
        client.close()

        unnamed = Client(service.url, service.token("quinn"))
        started = unnamed.start()
        model_voice = started["voice"]
        assert model_voice.startswith("espeak:en")  # the active model's voice, as before
        session_id = started["sessionId"]
        unnamed.close()
        # The config names the provider that speaks, so a resume keeps that voice.
        assert started["config"]["pipeline"]["ttsProvider"] == "espeak"
        again = Client(service.url, service.token("quinn"))
        assert again.start(sessionId=session_id)["voice"] == model_voice
        again.close()

        # A model of another provider than the default ttsProvider: the config says so.
        give_active_model(service, "rhea", RACHEL, TTSProvider.ELEVENLABS)
        theirs = Client(service.url, service.token("rhea"))
        started = theirs.start()
        assert started["voice"] == f"elevenlabs:{RACHEL}"
        assert started["config"]["pipeline"]["ttsProvider"] == "elevenlabs"
        session_id = started["sessionId"]
        # Stored as said before the client heard it: a resume straight after a dropped
        # connection reads the stored config before the dropped session's last save.
        stored = service.container.services.repository.get(session_id)
        assert stored.config["pipeline"]["ttsProvider"] == "elevenlabs"
        theirs.close()
        back = Client(service.url, service.token("rhea"))
        assert back.start(sessionId=session_id)["voice"] == f"elevenlabs:{RACHEL}"
        back.close()
