"""``shared.synthesis.voices``: which provider speaks each voice-model engine, and a
language's default voice found by one read when its id is the tag."""

from __future__ import annotations

from pathlib import Path

from shared.catalog.lookups import CatalogLookups
from shared.catalog.repository import VOICES, VoiceFilters, VoiceRepository
from shared.config import DEFAULT_ESPEAK_VARIANT_LANGUAGES
from shared.providers.espeak import EspeakProvider
from shared.providers.voices import VoiceProfile
from shared.store.base import DELETE_FIELD
from shared.store.sqlite import SqliteDocumentStore
from shared.synthesis.voices import MODEL_PROVIDERS, ranked_default, tag_voice
from shared.voice_models.model import TTSProvider


def test_every_voice_model_engine_has_its_provider_or_none_and_the_enum_finds_it() -> None:
    # The table is keyed by the engines' values (the module loads no voice-model code);
    # a new engine without a row would be refused as "not configured" without anyone asking.
    assert set(MODEL_PROVIDERS) == {engine.value for engine in TTSProvider}
    assert MODEL_PROVIDERS[TTSProvider.ESPEAK] == "espeak"
    assert MODEL_PROVIDERS[TTSProvider.GOOGLE_CLOUD_TTS] == "gcp"
    assert MODEL_PROVIDERS[TTSProvider.XTTS_V2] is None


def espeak_catalog(path: Path) -> tuple[SqliteDocumentStore, list[VoiceProfile]]:
    """Return a store holding eSpeak NG's catalog (the default variant languages)."""
    store = SqliteDocumentStore(path)
    espeak = EspeakProvider(variant_languages=DEFAULT_ESPEAK_VARIANT_LANGUAGES.split(","))
    voices = espeak.list_voices()
    repository = VoiceRepository(store)
    for start in range(0, len(voices), 500):
        repository.upsert(voices[start : start + 500])
    return store, voices


def every_tag(voices: list[VoiceProfile]) -> list[str]:
    """Return each language of ``voices``, its base language, and tags no voice speaks."""
    tags = {voice.language for voice in voices}
    tags |= {tag.split("-")[0] for tag in tags} | {"en", "en-us", "EN-US", "xx", "xx-YY"}
    return sorted(tags)


def test_base_voices_first_pick_what_ranking_every_voice_picks(tmp_path: Path) -> None:
    """``ranked_default`` queries base voices first; a catalog stored before they carried
    ``is_base`` has every voice ranked, and both give the same voice for every tag."""
    store, voices = espeak_catalog(tmp_path / "new.sqlite3")
    old, _ = espeak_catalog(tmp_path / "old.sqlite3")
    for start in range(0, len(voices), 500):
        with old.batch() as batch:
            for voice in voices[start : start + 500]:
                batch.update(VOICES, voice.id, {"is_base": DELETE_FIELD})
    new_catalog = CatalogLookups(store, ttl_seconds=0)
    old_catalog = CatalogLookups(old, ttl_seconds=0)
    assert old_catalog.voices(VoiceFilters(provider="espeak", base_only=True), limit=5) == []
    bases = new_catalog.voices(
        VoiceFilters(provider="espeak", language="fr", base_only=True), limit=500
    )
    assert 0 < len(bases) < 10  # of about a hundred French voices
    for tag in every_tag(voices):
        picked = ranked_default(new_catalog, "espeak", tag)
        assert picked == ranked_default(old_catalog, "espeak", tag), tag
    assert ranked_default(new_catalog, "espeak", "en").id == "espeak:en-US"  # type: ignore[union-attr]
    store.close()
    old.close()


def test_a_voice_whose_id_is_the_tag_is_the_ranked_default_found_by_one_read(
    tmp_path: Path,
) -> None:
    """``tag_voice`` only skips the query when the ranking would pick the same voice."""
    store, voices = espeak_catalog(tmp_path / "store.sqlite3")
    catalog = CatalogLookups(store, ttl_seconds=0)
    tags = every_tag(voices)
    shortcuts = set()
    for tag in tags:
        found = tag_voice(catalog, "espeak", tag)
        if found is not None:
            shortcuts.add(tag)
            assert found == ranked_default(catalog, "espeak", tag), tag
    assert {"en-US", "de", "es"} <= shortcuts
    assert "fr" not in shortcuts  # espeak:fr speaks fr-FR: the ranking decides
    assert tag_voice(catalog, "espeak", "en-US+f3") is None  # a variant never
    store.close()
