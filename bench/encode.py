"""Encoding cost: mp3 and ogg_opus encoding time as a fraction of synthesis time.

Synthesizes a 30-word English sentence with the embedded eSpeak provider (falling back to
a 5 s speech-like numpy signal if eSpeak cannot load, and saying so), then encodes the
PCM to each output format with ``shared.audio.encode.encode``. Each round times the
synthesis and every encoder once on one core, the next round on the next core
(``bench.cores``). Prints each encoder's median time over the rounds, the median of its
rounds' encode time / synthesis time, encode time / audio length (the real-time factor)
and the bitrate. Ogg Opus is encoded by libopus through PyAV, tuned for
speech files (CELT only, complexity 3, 20 ms frames, 48 kbps constrained VBR); the row
"ogg_opus (libsndfile)" is the encoder it replaced (libsndfile's defaults), measured in
the same run as the baseline of that choice, and the last lines compare the two: speed,
and fidelity to the input (waveform and log-spectrum correlation of the decoded audio).
MP3 is encoded at lame's algorithm quality ``MP3_QUALITY`` (5, lame's own default); the
rows "mp3 (quality 2)", the "near best" setting it replaced, and "mp3 (quality 7)", the
fast one that skips the psychoacoustic model, are measured beside it with their fidelity.
eSpeak is unusually fast (real-time factor about 0.002), so the fraction of synthesis is
the pessimistic one; against a cloud provider's 0.1-0.5 s per sentence, compare the RTF.

No pass/fail target; issue 18 asked for Opus well under its 38x eSpeak's synthesis time.

Run: ``.venv/bin/python -m bench.encode [--repeat N] [--rate HZ]``.
"""

from __future__ import annotations

import argparse
import functools
import io
import statistics
import time
from collections.abc import Callable, Mapping

import numpy as np
import soundfile  # type: ignore[import-untyped]  # no type hints shipped

from bench import cores
from shared.audio.encode import MP3_QUALITY, encode, output_rate
from shared.audio.pcm import resample, to_pcm, to_samples

SENTENCE = (
    "The quick brown fox jumps over the lazy dog while the patient narrator keeps reading "
    "this rather long sentence aloud, so that we can measure how much encoding really costs."
)
FORMATS = ("mp3", "ogg_opus", "flac", "wav")
LIBSNDFILE_OPUS = "ogg_opus (libsndfile)"
MP3_QUALITIES = {"mp3 (quality 2)": 2, "mp3 (quality 7)": 7}


def libsndfile_opus(pcm: bytes, rate: int) -> bytes:
    """Return ``pcm`` as Ogg Opus from libsndfile at its defaults (the encoder replaced)."""
    target = output_rate("ogg_opus", rate)
    buffer = io.BytesIO()
    samples = to_samples(resample(pcm, rate, target))
    soundfile.write(buffer, samples, target, format="OGG", subtype="OPUS")
    return buffer.getvalue()


def fidelity(pcm: bytes, rate: int, data: bytes) -> tuple[float, float]:
    """Return the waveform and log-spectrum correlations of ``data`` decoded against ``pcm``."""
    decoded, decoded_rate = soundfile.read(io.BytesIO(data), dtype="int16")
    original = to_samples(resample(pcm, rate, int(decoded_rate))).astype(np.float64)
    size = min(len(original), len(decoded))
    a, b = original[:size], decoded[:size].astype(np.float64)

    def spectrum(x: np.ndarray) -> np.ndarray:
        frames = len(x) // 480
        windowed = x[: frames * 480].reshape(frames, 480) * np.hanning(480)
        return np.log10(np.abs(np.fft.rfft(windowed, axis=1)) + 1.0)

    wave = float(np.corrcoef(a, b)[0, 1])
    spectral = float(np.corrcoef(spectrum(a).ravel(), spectrum(b).ravel())[0, 1])
    return wave, spectral


def speech_like(rate: int, seconds: float = 5.0) -> bytes:
    # Voiced bursts: a 120 Hz pulse train with harmonics, 250 ms on, 80 ms off.
    rng = np.random.default_rng(7)
    t = np.arange(round(rate * seconds)) / rate
    voice = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 12))
    envelope = ((t % 0.33) < 0.25).astype(np.float64)
    signal = 0.3 * voice * envelope + 0.01 * rng.standard_normal(len(t))
    return to_pcm(np.clip(signal, -1, 1))


def synthesize(rate: int) -> tuple[bytes, Callable[[], object] | None, str]:
    """Return the PCM, what makes it again (None: no synthesis), and where it came from."""
    try:
        from shared.providers.base import AudioSettings, SynthesisRequest
        from shared.providers.espeak import EspeakProvider

        provider = EspeakProvider(variant_languages=[])
        request = SynthesisRequest(
            text=SENTENCE, voice_id="en-US", settings=AudioSettings(sample_rate=rate)
        )
        pcm = provider.synthesize(request).pcm  # loads the engine and voice list
        return pcm, lambda: provider.synthesize(request), "eSpeak NG synthesis"
    except Exception as exc:  # any failure to load eSpeak means: use the numpy signal
        print(f"eSpeak unavailable ({exc!r}); using a 5 s speech-like numpy signal")
        return speech_like(rate), None, "signal duration (no synthesis)"


def timed(action: Callable[[], object]) -> float:
    """Return the seconds ``action`` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(
    runs: Mapping[str, Callable[[], object]], synthesis: Callable[[], object] | None, repeat: int
) -> tuple[dict[str, float], dict[str, float], float]:
    """Return each run's median seconds and median ratio to the synthesis, and the
    synthesis's median seconds.

    Each round times the synthesis and every run once, all on one core, the next round on
    the next core (``bench.cores``: this machine's cores differ in speed, so a run timed on
    one core against a synthesis timed on the other would compare the cores); a ratio is
    the median of the rounds' own ratios. Without a synthesis (``None``), the baseline is
    the audio's duration and ratios are to that.
    """
    for run in runs.values():
        run()  # warm up the codec libraries
    seconds: dict[str, list[float]] = {label: [] for label in runs}
    baseline: list[float] = []
    for _ in cores.pinned_rounds(repeat):
        baseline.append(timed(synthesis) if synthesis is not None else 0.0)
        for label, run in runs.items():
            seconds[label].append(timed(run))
    medians = {label: statistics.median(found) for label, found in seconds.items()}
    if synthesis is None:
        return medians, {}, 0.0
    ratios = {
        label: statistics.median(t / b for t, b in zip(found, baseline, strict=True))
        for label, found in seconds.items()
    }
    return medians, ratios, statistics.median(baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--rate", type=int, default=22_050)
    args = parser.parse_args()

    pcm, synthesis, baseline = synthesize(args.rate)
    audio_seconds = len(pcm) / 2 / args.rate
    source = f"{len(SENTENCE.split())} words" if synthesis else "speech-like signal"
    runs: dict[str, Callable[[], bytes]] = {
        fmt: functools.partial(lambda f: encode(pcm, args.rate, f).data, fmt) for fmt in FORMATS
    }
    runs[LIBSNDFILE_OPUS] = functools.partial(libsndfile_opus, pcm, args.rate)
    for label, quality in MP3_QUALITIES.items():
        runs[label] = functools.partial(
            lambda q: encode(pcm, args.rate, "mp3", mp3_quality=q).data, quality
        )
    seconds_of, ratio_of, synthesis_seconds = measure(runs, synthesis, args.repeat)
    if synthesis is None:
        synthesis_seconds = audio_seconds
        ratio_of = {label: found / audio_seconds for label, found in seconds_of.items()}
    print(f"input: {source}, {audio_seconds:.2f} s of audio at {args.rate} Hz")
    print(f"baseline ({baseline}): {synthesis_seconds * 1000:.1f} ms")
    print("each round: the baseline and every encoder once, on one core; cores alternate\n")
    print(f"{'format':21} {'encode ms':>10} {'/ synthesis':>12} {'/ audio (RTF)':>14} {'kbps':>6}")
    for label, run in runs.items():
        seconds, size = seconds_of[label], len(run())
        print(
            f"{label:21} {seconds * 1000:10.2f} {ratio_of[label]:12.2f}"
            f" {seconds / audio_seconds:14.4f} {size * 8 / audio_seconds / 1000:6.0f}"
        )
    print(
        f"\n'/ synthesis' is the median of each round's encode time over {baseline} time;"
        " RTF is over audio length"
    )
    opus, before = ratio_of["ogg_opus"], ratio_of[LIBSNDFILE_OPUS]
    print(
        f"ogg_opus: {opus:.2f} x synthesis (was {before:.1f} x with libsndfile), "
        f"{before / opus:.1f} times faster"
    )
    for label in ("ogg_opus", LIBSNDFILE_OPUS):
        wave, spectral = fidelity(pcm, args.rate, runs[label]())
        print(f"  fidelity {label}: waveform r {wave:.3f}, log-spectrum r {spectral:.3f}")
    mp3, replaced = ratio_of["mp3"], ratio_of["mp3 (quality 2)"]
    print(
        f"mp3 at quality {MP3_QUALITY}: {mp3:.2f} x synthesis (was {replaced:.2f} x at "
        f"quality 2), {replaced / mp3:.1f} times faster"
    )
    for label in ("mp3", *MP3_QUALITIES):
        wave, spectral = fidelity(pcm, args.rate, runs[label]())
        print(f"  fidelity {label}: waveform r {wave:.4f}, log-spectrum r {spectral:.4f}")


if __name__ == "__main__":
    main()
