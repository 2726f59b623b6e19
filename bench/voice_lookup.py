"""What resolving a request's voice reads from the catalog, with and without the memo.

Every synthesis resolves its voice name before anything else. One resolution here is
three names: ``en-US`` (the language's default voice: eSpeak's ``en-US``, found by one
read, ``shared.synthesis.voices.tag_voice``), ``fr`` (its default ranked among the
French base voices, three of about a hundred French voices, by a query:
``ranked_default``) and ``espeak:en-us`` (a
catalog id in another case: a read, then a query by the lower-case id). Measured through
``shared.catalog.lookups.CatalogLookups`` on the same catalog (eSpeak NG's voices, the
default variant languages, eSpeak alone), alternating in one run: reading every time
(``ttl_seconds=0``, what every request paid before) against answers remembered for 60 s
(the default ``VOICE_CATALOG_LOOKUP_CACHE_SECONDS``). One unrelated document is written
before each resolution, as each synthesis writes its own records between two requests:
the embedded store, which tells that anything was written, reads again every time (its
figures show what the memo costs there); Firestore cannot tell, so its answers are reused.
On Google's Firestore emulator on loopback, which understates production's round trips.
Prints each one's p50 and the ratio remembered / read.

Run: ``.venv/bin/python -m bench.voice_lookup [--repeat N] [--no-firestore]``.
"""

from __future__ import annotations

from bench.stores import alternating_p50s, run_on_both_stores
from shared.catalog.lookups import CatalogLookups
from shared.catalog.repository import VoiceRepository
from shared.config import DEFAULT_ESPEAK_VARIANT_LANGUAGES
from shared.providers.espeak import EspeakProvider
from shared.providers.registry import ProviderRegistry
from shared.store.base import DocumentStore
from shared.synthesis.voices import default_voice_for_language


def measure_on(label: str, store: DocumentStore, repeat: int) -> None:
    """Print the p50 of one voice resolution on ``store``, read and remembered."""
    espeak = EspeakProvider(variant_languages=DEFAULT_ESPEAK_VARIANT_LANGUAGES.split(","))
    voices = espeak.list_voices()
    repository = VoiceRepository(store)
    for start in range(0, len(voices), 500):
        repository.upsert(voices[start : start + 500])
    providers = ProviderRegistry.of([espeak])
    chosen = set()

    def resolve(lookups: CatalogLookups) -> None:
        english = default_voice_for_language("en-US", catalog=lookups, providers=providers)
        french = default_voice_for_language("fr", catalog=lookups, providers=providers)
        by_id = lookups.voice("espeak:en-us")
        assert english is not None
        assert french is not None
        assert by_id is not None
        chosen.add((english.voice_id, french.voice_id, by_id.id))

    read = CatalogLookups(store, ttl_seconds=0)
    remembered = CatalogLookups(store, ttl_seconds=60)
    p50 = alternating_p50s(
        {"read": lambda: resolve(read), "remembered": lambda: resolve(remembered)},
        repeat=repeat,
        warmup=2,
        before_each=lambda name, round_: store.set(
            "bench_writes", f"w{round_}-{name}", {"i": round_}
        ),
    )
    assert len(chosen) == 1, chosen  # both resolve to the same voices
    read_p50 = p50["read"] * 1000
    kept_p50 = p50["remembered"] * 1000
    print(f"{label}: {len(voices)} catalog voices, {repeat} resolutions each")
    print(f"   read every time   p50 {read_p50:8.3f} ms")
    print(f"   remembered (60 s) p50 {kept_p50:8.3f} ms   ratio {kept_p50 / read_p50:.3f}")


def main() -> None:
    """Measure on the embedded store, then on the Firestore emulator."""
    run_on_both_stores(measure_on, (__doc__ or "").splitlines()[0])


if __name__ == "__main__":
    main()
