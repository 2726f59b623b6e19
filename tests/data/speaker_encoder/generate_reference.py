"""Generate the speaker-encoder test clips and the torch original's embeddings of them.

Not run in CI: it needs torch, which the project never installs. It was run once, outside
the repository, in a throwaway virtualenv::

    python3.11 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch==2.13.0 librosa==0.11.0 scipy==1.17.1 \
        webrtcvad-wheels==2.0.14.post1 espeakng-loader==0.2.4 soundfile==0.14.0 \
        soxr==1.1.0 numpy==2.4.6 typing
    /tmp/refenv/bin/pip install --no-deps resemblyzer==0.1.4
    /tmp/refenv/bin/python tests/data/speaker_encoder/generate_reference.py

It renders short sentences with eSpeak NG (the ``espeakng-loader`` wheel, driven through
ctypes here so the script needs nothing from the project) in three voices, two sentences
each, and writes them as 16-bit WAV files beside this script: most at eSpeak's native
22 050 Hz (so the encoder's resampling is exercised), one resampled to 16 kHz (no
resampling), one with a second of faint noise between two sentences (so the voice-activity
trimming has a long pause to cut). Then it reads each file back with soundfile as float32,
runs resemblyzer's own ``preprocess_wav`` and ``VoiceEncoder("cpu").embed_utterance`` (the
torch network), and writes ``reference.json``: per clip, the embedding and the length of
the preprocessed waveform, plus the versions that produced them. The f3 variant breathes
(eSpeak adds random noise), so a second run renders its clips slightly differently: the
clips and the vectors are only meaningful as the set one run wrote.
"""

from __future__ import annotations

import ctypes
import json
import platform
from importlib import metadata
from pathlib import Path

import espeakng_loader
import numpy as np
import soundfile
import soxr

HERE = Path(__file__).resolve().parent
NATIVE_RATE = 22_050

FOX = "The quick brown fox jumps over the lazy dog near the river."
STELLA = "Please call Stella and ask her to bring these things."
# (file stem, eSpeak voice name, rate in words per minute, text, options)
CLIPS = [
    ("en_us_1", "gmw/en-US", 175, FOX, {}),
    ("en_us_2", "gmw/en-US", 175, STELLA, {"rate": 16_000}),
    ("f3_1", "gmw/en-US+f3", 175, FOX, {}),
    ("f3_2", "gmw/en-US+f3", 175, STELLA, {"pause": True}),
    ("klatt_1", "gmw/en+klatt2", 165, FOX, {}),
    ("klatt_2", "gmw/en+klatt2", 165, STELLA, {}),
]
VERSIONS_OF = ("torch", "resemblyzer", "librosa", "scipy", "numpy", "soxr", "webrtcvad-wheels")

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_chunks: list[bytes] = []


def _on_audio(wav, count, _events):  # type: ignore[no-untyped-def]
    if count > 0:
        _chunks.append(ctypes.string_at(wav, count * 2))
    return 0


def _espeak() -> ctypes.CDLL:
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    data = Path(espeakng_loader.get_data_path()).parent
    rate = lib.espeak_Initialize(2, 0, str(data).encode(), 0)  # AUDIO_OUTPUT_SYNCHRONOUS
    assert rate == NATIVE_RATE, rate
    lib._callback = _CALLBACK(_on_audio)  # kept referenced for as long as the library lives
    lib.espeak_SetSynthCallback(lib._callback)
    return lib


def _speak(lib: ctypes.CDLL, text: str, voice: str, wpm: int) -> np.ndarray:
    assert lib.espeak_SetVoiceByName(voice.encode()) == 0, voice
    lib.espeak_SetParameter(1, wpm, 0)  # espeakRATE
    _chunks.clear()
    data = text.encode()
    assert lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 0x1, None, None) == 0  # UTF-8
    return np.frombuffer(b"".join(_chunks), dtype="<i2").copy()


def make_clips() -> dict[str, Path]:
    lib = _espeak()
    noise = np.random.default_rng(16)
    paths = {}
    for stem, voice, wpm, text, options in CLIPS:
        pcm = _speak(lib, text, voice, wpm)
        rate = NATIVE_RATE
        if options.get("pause"):
            # Split after "Stella," with one second of noise at about -60 dBFS in between.
            middle = len(pcm) // 2
            gap = np.round(noise.normal(0, 30, NATIVE_RATE)).astype(np.int16)
            pcm = np.concatenate([pcm[:middle], gap, pcm[middle:]])
        if "rate" in options:
            rate = options["rate"]
            floats = soxr.resample(pcm.astype(np.float32) / 32768, NATIVE_RATE, rate)
            pcm = np.clip(np.round(floats * 32768), -32768, 32767).astype(np.int16)
        path = HERE / f"{stem}.wav"
        soundfile.write(path, pcm, rate, subtype="PCM_16")
        paths[stem] = path
    return paths


def main() -> None:
    from resemblyzer import VoiceEncoder, preprocess_wav

    paths = make_clips()
    encoder = VoiceEncoder("cpu", verbose=False)
    clips = {}
    for path in paths.values():
        wav, rate = soundfile.read(path, dtype="float32")
        prepared = preprocess_wav(wav, source_sr=rate)
        embedding = encoder.embed_utterance(prepared)
        clips[path.name] = {
            "sample_rate": rate,
            "seconds": round(len(wav) / rate, 3),
            "preprocessed_samples": len(prepared),
            "embedding": [float(x) for x in embedding],
        }
    versions = {name: metadata.version(name) for name in VERSIONS_OF}
    versions["python"] = platform.python_version()
    (HERE / "reference.json").write_text(
        json.dumps({"versions": versions, "clips": clips}, indent=1) + "\n", encoding="utf-8"
    )
    embeddings = np.array([clip["embedding"] for clip in clips.values()])
    names = list(clips)
    print("cosine similarities:")
    for name, row in zip(names, embeddings @ embeddings.T, strict=True):
        print(f"{name:14}", " ".join(f"{value:.3f}" for value in row))


if __name__ == "__main__":
    main()
