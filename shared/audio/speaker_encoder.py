"""Speaker embeddings: resemblyzer 0.1.4's trained d-vector network, run in numpy.

resemblyzer ("Generalized End-to-End Loss for Speaker Verification") maps speech to a
256-dimensional unit vector on which voices of one speaker lie close together. Its wheel
ships the trained weights (``resemblyzer/pretrained.pt``, Apache-2.0); the package itself
needs torch, so it is installed with ``--no-deps`` and only its weights file is read here
(``shared.audio.torch_weights``, no torch), checked against its SHA-256.

``SpeakerEncoder.embed`` reproduces resemblyzer's ``preprocess_wav`` and
``VoiceEncoder.embed_utterance`` step by step:

1. resample to 16 kHz with soxr's high quality (librosa's default), trimmed or zero-padded
   to ``ceil(n * 16000 / rate)`` samples as librosa does;
2. raise the level to -30 dBFS RMS (never lower it);
3. drop long pauses: webrtcvad (mode 3) on 30 ms windows, smoothed with an 8-window moving
   average, rounded, dilated by 3 windows each side; windows left unvoiced are cut;
4. 40-band mel power spectrogram: 25 ms periodic Hann windows every 10 ms, centred with
   zero padding, slaney-scale filters with slaney area normalisation (librosa's defaults);
5. 1.6 s partial utterances (160 frames) every 77 frames (1.3 per second), the last kept
   when at least 75 % of it is audio; a 3-layer LSTM (256 units) over each, then
   ReLU(linear(last hidden state)), L2-normalised; the partials' mean, L2-normalised.

The result matches the torch original to a cosine of 0.9999+ (tests compare against
vectors that the original produced, ``tests/data/speaker_encoder``). One exception to
faithfulness: samples that overflow 16 bits after step 2 are clipped for the voice
detector, where resemblyzer's cast would wrap them around.

The weights load lazily, once per process (``default_encoder``), from the installed wheel
or from a file named by the caller; an encoder is immutable and safe to share between
threads.
"""

from __future__ import annotations

import hashlib
import math
import threading
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]  # no type hints shipped
import webrtcvad  # type: ignore[import-untyped]  # no type hints shipped

from shared.audio.mel import mel_filterbank, mel_spectrogram
from shared.audio.torch_weights import CheckpointFormatError, load_legacy_checkpoint
from shared.errors import ConfigurationError, InvalidRequestError

SAMPLE_RATE = 16_000
EMBEDDING_SIZE = 256
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"

_N_FFT = 400  # 25 ms
_HOP = 160  # 10 ms
_N_MELS = 40
_PARTIAL_FRAMES = 160  # 1.6 s
_PARTIALS_PER_SECOND = 1.3
_MIN_COVERAGE = 0.75
_TARGET_DBFS = -30.0
_VAD_WINDOW = 480  # 30 ms
_VAD_MODE = 3
_VAD_AVERAGE_WIDTH = 8
_VAD_DILATION = 3  # windows each side: resemblyzer's structure of 6 + 1 windows, centred
_LAYERS = 3
_INT16_MAX = 32767

Floats = npt.NDArray[np.float32]


class SpeakerEncoderUnavailableError(ConfigurationError):
    code = "SPEAKER_ENCODER_UNAVAILABLE"
    default_message = "The speaker encoder's weights are missing or damaged"


class NoSpeechError(InvalidRequestError):
    code = "NO_SPEECH"
    default_message = "The audio holds no speech to embed"


def weights_path() -> Path:
    """Return where the installed resemblyzer wheel keeps ``pretrained.pt``.

    Raises:
        SpeakerEncoderUnavailableError: resemblyzer is not installed.
    """
    try:
        # The distribution's files, not an import: importing resemblyzer would pull torch.
        located = metadata.distribution("resemblyzer").locate_file("resemblyzer/pretrained.pt")
    except metadata.PackageNotFoundError as exc:
        raise SpeakerEncoderUnavailableError("The speaker encoder is not installed") from exc
    return Path(str(located))


class SpeakerEncoder:
    """The trained network and its fixed mel filterbank; ``embed`` is thread-safe."""

    def __init__(self, weights: dict[str, npt.NDArray[np.float32]]) -> None:
        try:
            self._layers = [
                (
                    _gates_last(weights[f"lstm.weight_ih_l{layer}"]).T.copy(),
                    _gates_last(weights[f"lstm.weight_hh_l{layer}"]).T.copy(),
                    _gates_last(
                        weights[f"lstm.bias_ih_l{layer}"] + weights[f"lstm.bias_hh_l{layer}"]
                    ),
                )
                for layer in range(_LAYERS)
            ]
            self._linear = (
                np.ascontiguousarray(weights["linear.weight"].T),
                weights["linear.bias"],
            )
        except KeyError as exc:
            raise SpeakerEncoderUnavailableError(
                f"The speaker encoder's weights lack {exc}"
            ) from exc
        self._filters = mel_filterbank(SAMPLE_RATE, _N_FFT, _N_MELS).T.copy()
        self._window = np.hanning(_N_FFT + 1)[:-1]  # periodic Hann, as scipy's get_window

    @classmethod
    def load(cls, path: Path | None = None, *, check_sha256: bool = True) -> SpeakerEncoder:
        """Return an encoder with the weights at ``path`` (the installed wheel's by default).

        Raises:
            SpeakerEncoderUnavailableError: the file is missing, is not the expected
                checkpoint (SHA-256 differs while ``check_sha256``) or cannot be read.
        """
        path = path or weights_path()
        # Messages reach API callers: the path and the parser's words stay in the cause.
        try:
            if check_sha256 and _sha256(path) != WEIGHTS_SHA256:
                raise SpeakerEncoderUnavailableError(
                    "The speaker encoder's weights are not resemblyzer 0.1.4's"
                )
            weights = load_legacy_checkpoint(path, "model_state")
        except (OSError, CheckpointFormatError) as exc:
            raise SpeakerEncoderUnavailableError(
                "The speaker encoder's weights cannot be read"
            ) from exc
        return cls(weights)

    def embed(self, pcm: npt.NDArray[np.generic], sample_rate: int) -> Floats:
        """Return the speaker embedding of mono ``pcm``: 256 float32, unit L2 norm.

        ``pcm`` is a 1-D array of floats in -1..1 or of 16-bit integers.

        Raises:
            ValueError: ``pcm`` is not 1-D, or ``sample_rate`` is not positive.
            NoSpeechError: nothing is left once silence and pauses are cut.
        """
        wav = preprocess(pcm, sample_rate)
        mels = self._partial_mels(wav)
        partials = self._forward(mels)
        mean = partials.mean(axis=0)
        return np.asarray(mean / np.linalg.norm(mean), dtype=np.float32)

    def _partial_mels(self, wav: Floats) -> Floats:
        starts, stop = partial_starts(len(wav))
        if stop >= len(wav):
            wav = np.pad(wav, (0, stop - len(wav)))
        mel = mel_spectrogram(wav, self._window, self._filters, _HOP)
        return np.stack([mel[start : start + _PARTIAL_FRAMES] for start in starts])

    def _forward(self, mels: Floats) -> Floats:
        """Run the LSTM over a batch (partials, frames, 40) and return unit embeddings."""
        sequence = mels
        batch, frames, _ = mels.shape
        hidden = np.zeros((batch, EMBEDDING_SIZE), dtype=np.float32)
        for input_weights, hidden_weights, bias in self._layers:
            inputs = sequence @ input_weights + bias  # every time step at once
            hidden = np.zeros((batch, EMBEDDING_SIZE), dtype=np.float32)
            cell = np.zeros((batch, EMBEDDING_SIZE), dtype=np.float32)
            outputs = np.empty((batch, frames, EMBEDDING_SIZE), dtype=np.float32)
            size = EMBEDDING_SIZE
            for step in range(frames):
                gates = inputs[:, step] + hidden @ hidden_weights
                # Gates reordered at load (input, forget, output, candidate): one sigmoid call.
                opened = _sigmoid(gates[:, : 3 * size])
                candidate = np.tanh(gates[:, 3 * size :])
                cell = opened[:, size : 2 * size] * cell + opened[:, :size] * candidate
                hidden = opened[:, 2 * size :] * np.tanh(cell)
                outputs[:, step] = hidden
            sequence = outputs
        weight, bias = self._linear
        raw = np.maximum(hidden @ weight + bias, 0.0)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return np.asarray(raw / norms, dtype=np.float32)


def _sigmoid(x: Floats) -> Floats:
    # Through tanh: no overflow warnings for large negative inputs.
    result = np.tanh(0.5 * x)
    result *= 0.5
    result += 0.5
    return np.asarray(result, dtype=np.float32)


def _gates_last(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Return torch's LSTM gate blocks (input, forget, candidate, output), candidate last."""
    i, f, g, o = np.split(rows, 4, axis=0)
    return np.concatenate([i, f, o, g], axis=0)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def preprocess(pcm: npt.NDArray[np.generic], sample_rate: int) -> Floats:
    """Return ``pcm`` as resemblyzer's ``preprocess_wav`` would: 16 kHz, levelled, trimmed.

    Raises:
        ValueError: ``pcm`` is not 1-D, or ``sample_rate`` is not positive.
        NoSpeechError: the audio is silent, or no voiced window survives the trimming.
    """
    if pcm.ndim != 1:
        raise ValueError("pcm must be one channel (a 1-D array)")
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    if np.issubdtype(pcm.dtype, np.integer):
        wav = (pcm.astype(np.float32) / 32768.0).astype(np.float32)
    else:
        wav = pcm.astype(np.float32)
    if sample_rate != SAMPLE_RATE:
        size = math.ceil(len(wav) * SAMPLE_RATE / sample_rate)
        resampled = soxr.resample(wav, sample_rate, SAMPLE_RATE, quality="soxr_hq")
        wav = np.zeros(size, dtype=np.float32)
        wav[: min(size, len(resampled))] = resampled[:size]
    wav = _raise_level(wav)
    trimmed = _trim_long_silences(wav)
    if len(trimmed) == 0:
        raise NoSpeechError()
    return trimmed


def _raise_level(wav: Floats) -> Floats:
    rms = np.sqrt(np.mean((wav * _INT16_MAX) ** 2))
    if not np.isfinite(rms) or rms == 0:
        raise NoSpeechError("The audio is silent")
    change = _TARGET_DBFS - 20 * np.log10(rms / _INT16_MAX)
    if change < 0:
        return wav
    return np.asarray(wav * (10 ** (change / 20)), dtype=np.float32)


def _trim_long_silences(wav: Floats) -> Floats:
    wav = wav[: len(wav) - len(wav) % _VAD_WINDOW]
    if len(wav) == 0:
        return wav
    samples = np.clip(np.round(wav * _INT16_MAX), -32768, _INT16_MAX).astype(np.int16)
    pcm = samples.tobytes()  # native byte order, as webrtcvad reads it
    vad = webrtcvad.Vad(_VAD_MODE)
    step = _VAD_WINDOW * 2
    voiced = np.array(
        [
            vad.is_speech(pcm[start : start + step], SAMPLE_RATE)
            for start in range(0, len(pcm), step)
        ],
        dtype=np.float64,
    )
    # resemblyzer's moving average: zero padding of (w-1)//2 before and w//2 after.
    width = _VAD_AVERAGE_WIDTH
    padded = np.concatenate([np.zeros((width - 1) // 2), voiced, np.zeros(width // 2)])
    sums = np.cumsum(padded)
    sums[width:] = sums[width:] - sums[:-width]
    mask = np.round(sums[width - 1 :] / width).astype(bool)  # half rounds to even: 0.5 -> 0
    # Dilation by a centred structure of 2 * 3 + 1 windows, outside counting as unvoiced.
    around = np.pad(mask, _VAD_DILATION)
    windows = np.lib.stride_tricks.sliding_window_view(around, 2 * _VAD_DILATION + 1)
    dilated = windows.any(axis=1)
    return wav[np.repeat(dilated, _VAD_WINDOW)]


def partial_starts(n_samples: int) -> tuple[list[int], int]:
    """Return the first mel frame of each partial utterance, and the samples they span.

    resemblyzer's ``compute_partial_slices`` with rate 1.3 and minimum coverage 0.75.
    """
    n_frames = math.ceil((n_samples + 1) / _HOP)
    frame_step = round((SAMPLE_RATE / _PARTIALS_PER_SECOND) / _HOP)
    steps = max(1, n_frames - _PARTIAL_FRAMES + frame_step + 1)
    starts = list(range(0, steps, frame_step))
    last = starts[-1] * _HOP
    coverage = (n_samples - last) / (_PARTIAL_FRAMES * _HOP)
    if coverage < _MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts, (starts[-1] + _PARTIAL_FRAMES) * _HOP


def cosine_similarity(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> float:
    """Return the cosine of the angle between two vectors (1.0 for the same direction).

    Raises:
        ValueError: the shapes differ, or a vector is all zeros.
    """
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    x, y = a.astype(np.float64), b.astype(np.float64)
    norms = float(np.linalg.norm(x) * np.linalg.norm(y))
    if norms == 0:
        raise ValueError("a zero vector has no direction")
    return float(np.dot(x, y) / norms)


_loaded: dict[Path | None, SpeakerEncoder] = {}
_default_lock = threading.Lock()


def default_encoder(weights: Path | None = None) -> SpeakerEncoder:
    """Return this process's encoder, loading it on first use.

    ``weights`` names the ``pretrained.pt`` file (deployments without the resemblyzer
    package ship it beside the code and name it in ``VOICE_SPEAKER_ENCODER_WEIGHTS``);
    None means the installed package's. Either way the file must be resemblyzer 0.1.4's
    (its SHA-256 is checked).

    Raises:
        SpeakerEncoderUnavailableError: the weights are missing or damaged.
    """
    encoder = _loaded.get(weights)
    if encoder is None:
        with _default_lock:
            encoder = _loaded.get(weights)
            if encoder is None:
                encoder = _loaded[weights] = SpeakerEncoder.load(weights)
    return encoder
