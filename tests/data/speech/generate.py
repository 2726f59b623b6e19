"""Record the test speech once: eSpeak NG phrases that Whisper tiny.en hears as written.

eSpeak NG does not say a text the same way twice in one process (its output moves by a few
samples with what it said before), and Whisper tiny.en mishears some of those variants, so
session tests that synthesised their speech on the fly passed or failed with test order.
``python -m tests.data.speech.generate`` synthesises each phrase until Whisper hears
exactly its words, at each rate the tests use, and stores it as 16-bit FLAC beside this
script; ``tests/sessions/support.speech`` plays those recordings (and synthesises only
phrases that have none). Run it again after adding a phrase to ``PHRASES``.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import soundfile

from shared.providers import AudioSettings, SynthesisRequest
from shared.providers.espeak import EspeakProvider
from shared.speech.whisper import WhisperSpeechToText

HERE = Path(__file__).resolve().parent
# Phrases whose recording need not be heard word for word (a VAD test, say) are not here:
# they are synthesised when a test asks for them.
PHRASES: dict[str, tuple[int, ...]] = {
    "Good morning.": (16_000,),
    "Hello.": (16_000,),
    "Hello, how are you?": (16_000,),
    "Thank you.": (16_000,),
    "What is your name?": (16_000,),
    "What is the weather like today?": (16_000, 48_000),
    "Thank you very much.": (16_000, 8_000),
    "Stop, please stop.": (16_000,),
    "Tell me a long story.": (16_000,),
    "Goodbye.": (16_000,),
    "Good morning, how are you?": (16_000,),
}


def file_for(text: str, rate: int, voice: str = "en-US") -> Path:
    """Return where the recording of ``text`` at ``rate`` in ``voice`` lives."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return HERE / f"{slug}.{voice}.{rate}.flac"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def main() -> None:
    engine = EspeakProvider(variant_languages=[])
    whisper = WhisperSpeechToText(workers=1)
    for text, rates in PHRASES.items():
        for rate in rates:
            for attempt in range(20):
                pcm = engine.synthesize(
                    SynthesisRequest(
                        text=text,
                        voice_id="en-US",
                        settings=AudioSettings(sample_rate=rate),
                        want_timings=False,
                    )
                ).pcm
                heard = asyncio.run(whisper.transcribe(pcm, rate, "en")).text
                if words(heard) == words(text):
                    samples = np.frombuffer(pcm, dtype="<i2")
                    soundfile.write(file_for(text, rate), samples, rate, subtype="PCM_16")
                    print(f"{text!r} at {rate} Hz: heard on attempt {attempt + 1}")
                    break
            else:
                raise SystemExit(f"Whisper never heard {text!r} at {rate} Hz as written")
    whisper.close()


if __name__ == "__main__":
    main()
