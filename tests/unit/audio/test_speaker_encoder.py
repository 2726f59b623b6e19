"""The numpy speaker encoder: the torch original's vectors, unit norm, voices told apart.

The clips and ``reference.json`` in ``tests/data/speaker_encoder`` were made once by
``generate_reference.py`` there, with resemblyzer 0.1.4 running on torch.
"""

from __future__ import annotations

import json
import os
import pickle
import threading
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import soundfile

from shared.audio import speaker_encoder
from shared.audio.speaker_encoder import (
    EMBEDDING_SIZE,
    NoSpeechError,
    SpeakerEncoder,
    SpeakerEncoderUnavailableError,
    cosine_similarity,
    default_encoder,
    preprocess,
    weights_path,
)
from shared.audio.torch_weights import CheckpointFormatError, load_legacy_checkpoint

DATA = Path(__file__).resolve().parents[2] / "data" / "speaker_encoder"
REFERENCE = json.loads((DATA / "reference.json").read_text(encoding="utf-8"))["clips"]


def read_clip(name: str) -> tuple[np.ndarray, int]:
    pcm, rate = soundfile.read(DATA / name, dtype="float32")
    return pcm, rate


def voice_of(name: str) -> str:
    return name.rsplit("_", 1)[0]  # en_us_1.wav -> en_us


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return default_encoder()


@pytest.fixture(scope="module")
def embeddings(encoder) -> dict[str, np.ndarray]:
    return {name: encoder.embed(*read_clip(name)) for name in REFERENCE}


def test_the_reference_set_holds_several_voices_and_sample_rates():
    assert len(REFERENCE) >= 4
    assert len({voice_of(name) for name in REFERENCE}) >= 3
    assert {clip["sample_rate"] for clip in REFERENCE.values()} >= {16_000, 22_050}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_embeddings_match_the_torch_original(embeddings, name):
    expected = np.array(REFERENCE[name]["embedding"])

    assert cosine_similarity(embeddings[name], expected) >= 0.9999
    np.testing.assert_allclose(embeddings[name], expected, atol=1e-5)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_preprocessing_keeps_exactly_the_audio_the_original_keeps(name):
    pcm, rate = read_clip(name)

    prepared = preprocess(pcm, rate)

    assert len(prepared) == REFERENCE[name]["preprocessed_samples"]


def test_a_long_pause_is_cut_before_embedding():
    pcm, rate = read_clip("f3_2.wav")  # one second of faint noise between two phrases

    prepared = preprocess(pcm, rate)

    assert len(prepared) / 16_000 < len(pcm) / rate - 0.5


def test_embeddings_are_unit_length_float32_vectors(embeddings):
    for embedding in embeddings.values():
        assert embedding.shape == (EMBEDDING_SIZE,)
        assert embedding.dtype == np.float32
        assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-6)


def test_the_same_audio_always_gives_the_same_vector(encoder):
    pcm, rate = read_clip("en_us_1.wav")

    assert np.array_equal(encoder.embed(pcm, rate), encoder.embed(pcm.copy(), rate))


def test_int16_samples_embed_like_the_same_floats(encoder):
    pcm, rate = read_clip("klatt_1.wav")
    samples = np.round(pcm * 32768).astype(np.int16)

    from_ints = encoder.embed(samples, rate)

    assert cosine_similarity(from_ints, encoder.embed(pcm, rate)) > 0.99999


def test_clips_of_one_voice_are_closer_than_clips_of_different_voices(embeddings):
    same, different = [], []
    for a, b in combinations(sorted(embeddings), 2):
        similarity = cosine_similarity(embeddings[a], embeddings[b])
        (same if voice_of(a) == voice_of(b) else different).append(similarity)

    assert len(same) == 3
    assert min(same) > max(different)


def test_silence_and_too_short_audio_have_no_speech_to_embed(encoder):
    with pytest.raises(NoSpeechError):
        encoder.embed(np.zeros(48_000, dtype=np.float32), 16_000)
    with pytest.raises(NoSpeechError):
        encoder.embed(np.full(100, 0.1, dtype=np.float32), 16_000)


def test_stereo_or_bad_rates_are_refused(encoder):
    pcm, rate = read_clip("en_us_1.wav")
    with pytest.raises(ValueError, match="one channel"):
        encoder.embed(np.stack([pcm, pcm], axis=1), rate)
    with pytest.raises(ValueError, match="sample_rate"):
        encoder.embed(pcm, 0)


def test_cosine_similarity_of_directions():
    a = np.array([1.0, 0.0], dtype=np.float32)
    assert cosine_similarity(a, a * 3) == pytest.approx(1.0)
    assert cosine_similarity(a, np.array([0.0, 2.0])) == pytest.approx(0.0)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="zero"):
        cosine_similarity(a, np.zeros(2))


def test_one_encoder_is_loaded_for_all_threads(monkeypatch):
    monkeypatch.setattr(speaker_encoder, "_loaded", {})
    found: list[SpeakerEncoder] = []
    barrier = threading.Barrier(6)

    def load() -> None:
        barrier.wait()
        found.append(default_encoder())

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(found) == 6
    assert all(encoder is found[0] for encoder in found)


def test_the_installed_weights_are_read_without_torch():
    weights = load_legacy_checkpoint(weights_path(), "model_state")

    assert weights["lstm.weight_ih_l0"].shape == (1024, 40)
    assert weights["lstm.weight_hh_l2"].shape == (1024, 256)
    assert weights["linear.weight"].shape == (256, 256)
    assert all(array.dtype == np.float32 for array in weights.values())


def test_other_weights_than_resemblyzer_s_are_refused(tmp_path):
    damaged = tmp_path / "pretrained.pt"
    data = bytearray(weights_path().read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))

    with pytest.raises(SpeakerEncoderUnavailableError, match="not resemblyzer"):
        SpeakerEncoder.load(damaged)
    with pytest.raises(SpeakerEncoderUnavailableError, match="cannot be read"):
        SpeakerEncoder.load(tmp_path / "missing.pt")


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def legacy_file(path: Path, root: object) -> Path:
    with path.open("wb") as stream:
        for value in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, root, []):
            pickle.dump(value, stream, protocol=2)
    return path


def test_a_checkpoint_naming_other_code_is_refused_not_run(tmp_path):
    path = legacy_file(tmp_path / "evil.pt", {"model_state": {"x": _RunsCode()}})

    with pytest.raises(CheckpointFormatError, match=r"(posix|os)\.getcwd"):
        load_legacy_checkpoint(path, "model_state")
    with pytest.raises(SpeakerEncoderUnavailableError):
        SpeakerEncoder.load(path, check_sha256=False)


def test_files_that_are_not_legacy_checkpoints_are_refused(tmp_path):
    text = tmp_path / "text.pt"
    text.write_text("hello", encoding="utf-8")
    empty = legacy_file(tmp_path / "empty.pt", {"model_state": {}})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(weights_path().read_bytes()[:100_000])

    with pytest.raises(CheckpointFormatError):
        load_legacy_checkpoint(text, "model_state")
    with pytest.raises(CheckpointFormatError, match="no 'optimizer_state'"):
        load_legacy_checkpoint(empty, "optimizer_state")
    with pytest.raises(CheckpointFormatError, match="ends"):
        load_legacy_checkpoint(truncated, "model_state")
    with pytest.raises(SpeakerEncoderUnavailableError, match="lack"):
        SpeakerEncoder.load(empty, check_sha256=False)


def test_weights_can_come_from_a_file_named_in_the_settings(tmp_path, monkeypatch):
    # A deployment without the resemblyzer package ships pretrained.pt beside the code.
    copy = tmp_path / "pretrained.pt"
    copy.write_bytes(weights_path().read_bytes())
    monkeypatch.setattr(speaker_encoder, "_loaded", {})
    from_file = default_encoder(copy)
    assert from_file is default_encoder(copy)
    assert from_file is not default_encoder()
    pcm, rate = read_clip("en_us_1.wav")
    assert np.allclose(from_file.embed(pcm, rate), default_encoder().embed(pcm, rate))


def test_a_named_weights_file_that_is_not_resemblyzers_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(speaker_encoder, "_loaded", {})
    bogus = tmp_path / "pretrained.pt"
    bogus.write_bytes(b"not the weights")
    with pytest.raises(SpeakerEncoderUnavailableError):
        default_encoder(bogus)
    with pytest.raises(SpeakerEncoderUnavailableError):
        default_encoder(tmp_path / "missing.pt")
