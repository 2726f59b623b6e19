"""Encoding cost: mp3 and ogg_opus encoding time as a fraction of synthesis time.

Synthesizes a 30-word English sentence with the embedded eSpeak provider (falling back to
a 5 s speech-like numpy signal if eSpeak cannot load, and saying so), then encodes the
PCM to each output format with ``shared.audio.encode.encode``. Prints the median time of
each over the repetitions, encode time / synthesis time, encode time / audio length (the
real-time factor) and the bitrate. Opus runs twice: at libsndfile's default bitrate
(speech mode, smallest files) and at compression 0.75 (about 70 kbps, faster). eSpeak is
unusually fast (real-time factor about 0.002), so the fraction of synthesis is the
pessimistic one; against a cloud provider's 0.1-0.5 s per sentence, compare the RTF.

No pass/fail target: the figures feed the choice of the Opus default (size vs. CPU).

Run: ``.venv/bin/python -m bench.encode [--repeat N] [--rate HZ]``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import numpy as np

from shared.audio.encode import encode
from shared.audio.pcm import to_pcm

SENTENCE = (
    "The quick brown fox jumps over the lazy dog while the patient narrator keeps reading "
    "this rather long sentence aloud, so that we can measure how much encoding really costs."
)
VARIANTS: list[tuple[str, str, float | None]] = [  # label, format, Opus compression
    ("mp3", "mp3", None),
    ("ogg_opus", "ogg_opus", None),
    ("ogg_opus (0.75)", "ogg_opus", 0.75),
    ("flac", "flac", None),
    ("wav", "wav", None),
]


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def speech_like(rate: int, seconds: float = 5.0) -> bytes:
    # Voiced bursts: a 120 Hz pulse train with harmonics, 250 ms on, 80 ms off.
    rng = np.random.default_rng(7)
    t = np.arange(round(rate * seconds)) / rate
    voice = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 12))
    envelope = ((t % 0.33) < 0.25).astype(np.float64)
    signal = 0.3 * voice * envelope + 0.01 * rng.standard_normal(len(t))
    return to_pcm(np.clip(signal, -1, 1))


def synthesize(rate: int, repeat: int) -> tuple[bytes, float, str]:
    """Return the PCM, the seconds it took to make, and where it came from."""
    try:
        from shared.providers.base import AudioSettings, SynthesisRequest
        from shared.providers.espeak import EspeakProvider

        provider = EspeakProvider(variant_languages=[])
        request = SynthesisRequest(
            text=SENTENCE, voice_id="en-US", settings=AudioSettings(sample_rate=rate)
        )
        provider.synthesize(request)  # load the engine and voice list outside the timing
        seconds = median_seconds(lambda: provider.synthesize(request), repeat)
        return provider.synthesize(request).pcm, seconds, "eSpeak NG synthesis"
    except Exception as exc:  # any failure to load eSpeak means: use the numpy signal
        pcm = speech_like(rate)
        print(f"eSpeak unavailable ({exc!r}); using a 5 s speech-like numpy signal")
        return pcm, len(pcm) / 2 / rate, "signal duration (no synthesis)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--rate", type=int, default=22_050)
    args = parser.parse_args()

    pcm, synthesis_seconds, baseline = synthesize(args.rate, args.repeat)
    synthesized = baseline.startswith("eSpeak")
    audio_seconds = len(pcm) / 2 / args.rate
    source = f"{len(SENTENCE.split())} words" if synthesized else "speech-like signal"
    print(f"input: {source}, {audio_seconds:.2f} s of audio at {args.rate} Hz")
    print(f"baseline ({baseline}): {synthesis_seconds * 1000:.1f} ms\n")
    print(f"{'format':17} {'encode ms':>10} {'/ synthesis':>12} {'/ audio (RTF)':>14} {'kbps':>6}")
    rtf: dict[str, float] = {}
    for label, fmt, compression in VARIANTS:
        run = functools.partial(encode, pcm, args.rate, fmt, opus_compression=compression)
        run()  # warm up codec libraries
        seconds = median_seconds(run, args.repeat)
        size = len(run().data)
        rtf[label] = seconds / audio_seconds
        print(
            f"{label:17} {seconds * 1000:10.2f} {seconds / synthesis_seconds:12.2f}"
            f" {rtf[label]:14.4f} {size * 8 / audio_seconds / 1000:6.0f}"
        )
    print(f"\n'/ synthesis' is encode time over {baseline} time; RTF is over audio length")


if __name__ == "__main__":
    main()
