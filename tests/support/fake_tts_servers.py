"""Local fakes of the cloud TTS APIs, speaking each API's real wire format.

* ElevenLabs: ``GET /v1/voices`` (voices with ``labels``, ``is_legacy``, ``preview_url``)
  and ``POST /v1/text-to-speech/{id}/with-timestamps`` (``audio_base64`` of raw PCM at the
  ``output_format`` rate, plus ``alignment`` with per-character times).
* Azure: ``GET /cognitiveservices/voices/list`` and ``POST /cognitiveservices/v1`` (SSML in,
  raw 24 kHz PCM out, as ``X-Microsoft-OutputFormat: raw-24khz-16bit-mono-pcm`` asks).
* ElevenLabs streaming: ``POST /v1/text-to-speech/{id}/stream`` answering raw PCM at the
  ``output_format`` rate with chunked transfer encoding, piece by piece.
* OpenAI-compatible: ``POST /v1/audio/speech`` answering raw 24 kHz PCM, chunked, as the
  API streams it; ``speed`` (0.25 to 4.0) is ignored by ``gpt-4o-mini-tts``, as OpenAI's.
* Google Cloud TTS (REST transport): ``GET /v1beta1/voices`` and
  ``POST /v1beta1/text:synthesize`` answering ``audioContent`` (a base64 WAV, as Google
  sends for LINEAR16) and ``timepoints`` for every ``<mark>`` in the SSML; input beyond
  5,000 bytes is ``INVALID_ARGUMENT``, as Google's.

Each checks its auth header the way the real API does (401 with the API's error body).
Audio is a quiet tone lasting 60 ms per input character, so durations are predictable.
Streamed bodies go out in pieces of an odd number of bytes (a network splits samples too);
with a ``gate`` (a ``threading.Event``), everything after the first piece waits for it, so
a test can prove a client had the first audio before the server had sent the rest.
"""

from __future__ import annotations

import base64
import io
import re
import threading
import wave
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape, unescape

import numpy as np
from werkzeug.wrappers import Request, Response

from tests.support.fake_http import FakeHttpServer, json_response

SECONDS_PER_CHAR = 0.06
STREAM_PIECE_BYTES = 4_801
GATE_TIMEOUT_SECONDS = 30


def streamed(audio: bytes, gate: threading.Event | None) -> Iterator[bytes]:
    """Yield ``audio`` in odd-sized pieces; after the first, wait for ``gate`` when given."""
    for start in range(0, len(audio), STREAM_PIECE_BYTES):
        if start and gate is not None:
            gate.wait(GATE_TIMEOUT_SECONDS)
        yield audio[start : start + STREAM_PIECE_BYTES]


def tone(seconds: float, rate: int) -> bytes:
    """Return ``seconds`` of a 220 Hz tone as 16-bit mono PCM at ``rate``."""
    count = max(1, round(seconds * rate))
    samples = 0.2 * np.sin(2 * np.pi * 220 * np.arange(count) / rate)
    return (samples * 32767).astype("<i2").tobytes()


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


# -- ElevenLabs ------------------------------------------------------------------------------

ELEVENLABS_KEY = "el-test-key-0123456789"

ELEVENLABS_VOICES: list[dict[str, Any]] = [
    {
        "voice_id": "21m00Tcm4TlvDq8ikWAM",
        "name": "Rachel",
        "category": "premade",
        "labels": {
            "accent": "american",
            "description": "calm",
            "age": "young",
            "gender": "female",
            "use_case": "narration",
        },
        "description": None,
        "preview_url": "https://storage.googleapis.com/eleven-public-prod/premade/voices/21m00Tcm4TlvDq8ikWAM/preview.mp3",
        "verified_languages": [
            {
                "language": "en",
                "model_id": "eleven_multilingual_v2",
                "accent": "american",
                "locale": "en-US",
            }
        ],
        "is_legacy": False,
    },
    {
        "voice_id": "JBFqnCBsd6RMkjVDRZzb",
        "name": "George",
        "category": "premade",
        "labels": {
            "accent": "british",
            "description": "warm",
            "age": "middle aged",
            "gender": "male",
            "use_case": "narrative_story",
        },
        "description": "Warm resonance that instantly captivates listeners.",
        "preview_url": "https://storage.googleapis.com/eleven-public-prod/premade/voices/JBFqnCBsd6RMkjVDRZzb/preview.mp3",
        "verified_languages": [
            {
                "language": "en",
                "model_id": "eleven_multilingual_v2",
                "accent": "british",
                "locale": "en-GB",
            }
        ],
        "is_legacy": False,
    },
    {
        "voice_id": "2EiwWnXFnvU5JabPnv8n",
        "name": "Clyde",
        "category": "premade",
        "labels": {"accent": "american", "age": "old", "use_case": "characters"},
        "description": None,
        "preview_url": None,
        "verified_languages": [],
        "is_legacy": True,
    },
]


def elevenlabs_app(
    voices: list[dict[str, Any]] | None = None, gate: threading.Event | None = None
) -> Any:
    listed = ELEVENLABS_VOICES if voices is None else voices

    def app(request: Request) -> Response:
        if request.headers.get("xi-api-key") != ELEVENLABS_KEY:
            return json_response(
                {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}, 401
            )
        if request.method == "GET" and request.path == "/v1/voices":
            return json_response({"voices": listed})
        match = re.fullmatch(r"/v1/text-to-speech/([^/]+)/with-timestamps", request.path)
        if request.method == "POST" and match:
            if match.group(1) not in {v["voice_id"] for v in listed}:
                return json_response(
                    {"detail": {"status": "voice_not_found", "message": "Voice not found"}}, 404
                )
            text = request.get_json()["text"]
            rate = int(request.args.get("output_format", "mp3_44100_128").split("_")[1])
            starts = [round(i * SECONDS_PER_CHAR, 3) for i in range(len(text))]
            ends = [round((i + 1) * SECONDS_PER_CHAR, 3) for i in range(len(text))]
            alignment = {
                "characters": list(text),
                "character_start_times_seconds": starts,
                "character_end_times_seconds": ends,
            }
            audio = tone(len(text) * SECONDS_PER_CHAR, rate)
            return json_response(
                {
                    "audio_base64": base64.b64encode(audio).decode(),
                    "alignment": alignment,
                    "normalized_alignment": alignment,
                }
            )
        match = re.fullmatch(r"/v1/text-to-speech/([^/]+)/stream", request.path)
        if request.method == "POST" and match:
            if match.group(1) not in {v["voice_id"] for v in listed}:
                return json_response(
                    {"detail": {"status": "voice_not_found", "message": "Voice not found"}}, 404
                )
            text = request.get_json()["text"]
            rate = int(request.args.get("output_format", "mp3_44100_128").split("_")[1])
            audio = tone(len(text) * SECONDS_PER_CHAR, rate)
            return Response(streamed(audio, gate), mimetype="application/octet-stream")
        if request.method == "POST" and request.path == "/v1/text-to-dialogue/with-timestamps":
            return _elevenlabs_dialogue(request, {v["voice_id"] for v in listed})
        return json_response({"detail": {"status": "not_found", "message": "Not found"}}, 404)

    return app


def _elevenlabs_dialogue(request: Request, known: set[str]) -> Response:
    body = request.get_json()
    if body.get("model_id") != "eleven_v3":
        return json_response(
            {"detail": {"status": "invalid_model", "message": "Dialogue needs eleven_v3"}}, 400
        )
    inputs = body["inputs"]
    if any(item["voice_id"] not in known for item in inputs):
        return json_response(
            {"detail": {"status": "voice_not_found", "message": "Voice not found"}}, 404
        )
    rate = int(request.args.get("output_format", "mp3_44100_128").split("_")[1])
    # The inputs' texts run together in the alignment; voice_segments say whose is whose.
    characters: list[str] = []
    segments = []
    for index, item in enumerate(inputs):
        first = len(characters)
        characters.extend(item["text"])
        segments.append(
            {
                "voice_id": item["voice_id"],
                "start_time_seconds": round(first * SECONDS_PER_CHAR, 3),
                "end_time_seconds": round(len(characters) * SECONDS_PER_CHAR, 3),
                "character_start_index": first,
                "character_end_index": len(characters),
                "dialogue_input_index": index,
            }
        )
    alignment = {
        "characters": characters,
        "character_start_times_seconds": [
            round(i * SECONDS_PER_CHAR, 3) for i in range(len(characters))
        ],
        "character_end_times_seconds": [
            round((i + 1) * SECONDS_PER_CHAR, 3) for i in range(len(characters))
        ],
    }
    audio = tone(len(characters) * SECONDS_PER_CHAR, rate)
    return json_response(
        {
            "audio_base64": base64.b64encode(audio).decode(),
            "alignment": alignment,
            "normalized_alignment": alignment,
            "voice_segments": segments,
        }
    )


# -- Azure -----------------------------------------------------------------------------------

AZURE_KEY = "azure-test-key-abcdef"

AZURE_VOICES: list[dict[str, Any]] = [
    {
        "Name": "Microsoft Server Speech Text to Speech Voice (en-US, JennyNeural)",
        "DisplayName": "Jenny",
        "LocalName": "Jenny",
        "ShortName": "en-US-JennyNeural",
        "Gender": "Female",
        "Locale": "en-US",
        "LocaleName": "English (United States)",
        "StyleList": ["assistant", "chat", "customerservice", "newscast", "angry", "cheerful"],
        "SampleRateHertz": "24000",
        "VoiceType": "Neural",
        "Status": "GA",
        "VoiceTag": {
            "TailoredScenarios": ["Chat", "Assistant", "CustomerService"],
            "VoicePersonalities": ["Warm", "Friendly"],
        },
        "WordsPerMinute": "152",
    },
    {
        "Name": "Microsoft Server Speech Text to Speech Voice (en-US, AnaNeural)",
        "DisplayName": "Ana",
        "LocalName": "Ana",
        "ShortName": "en-US-AnaNeural",
        "Gender": "Female",
        "Locale": "en-US",
        "LocaleName": "English (United States)",
        "SampleRateHertz": "24000",
        "VoiceType": "Neural",
        "Status": "GA",
        "VoiceTag": {"TailoredScenarios": ["Audiobook"], "AgeGroups": ["Child"]},
        "WordsPerMinute": "135",
    },
    {
        "Name": "Microsoft Server Speech Text to Speech Voice (zh-TW, HsiaoChenNeural)",
        "DisplayName": "HsiaoChen",
        "LocalName": "曉臻",
        "ShortName": "zh-TW-HsiaoChenNeural",
        "Gender": "Female",
        "Locale": "zh-TW",
        "LocaleName": "Chinese (Taiwanese Mandarin, Traditional)",
        "SampleRateHertz": "24000",
        "VoiceType": "Neural",
        "Status": "GA",
        "WordsPerMinute": "229",
    },
    {
        "Name": "Microsoft Server Speech Text to Speech Voice (en-GB, HollieNeural)",
        "DisplayName": "Hollie",
        "LocalName": "Hollie",
        "ShortName": "en-GB-HollieNeural",
        "Gender": "Female",
        "Locale": "en-GB",
        "LocaleName": "English (United Kingdom)",
        "SampleRateHertz": "48000",
        "VoiceType": "Neural",
        "Status": "Deprecated",
        "WordsPerMinute": "150",
    },
]


def azure_app(voices: list[dict[str, Any]] | None = None) -> Any:
    listed = AZURE_VOICES if voices is None else voices

    def app(request: Request) -> Response:
        if request.headers.get("Ocp-Apim-Subscription-Key") != AZURE_KEY:
            return json_response(
                {"error": {"code": "401", "message": "Access denied due to invalid key"}}, 401
            )
        if request.method == "GET" and request.path == "/cognitiveservices/voices/list":
            return json_response(listed)
        if request.method == "POST" and request.path == "/cognitiveservices/v1":
            if request.headers.get("X-Microsoft-OutputFormat") != "raw-24khz-16bit-mono-pcm":
                return Response(status=400)
            ssml = request.get_data(as_text=True)
            spoken = unescape(re.sub(r"<[^>]+>", "", ssml))
            return Response(tone(len(spoken) * SECONDS_PER_CHAR, 24_000), mimetype="audio/x-wav")
        return Response(status=404)

    return app


# -- OpenAI-compatible -----------------------------------------------------------------------

OPENAI_KEY = "sk-test-openai-key"


def openai_streaming_app(gate: threading.Event | None = None) -> Any:
    """Return the OpenAI fake whose PCM bodies wait for ``gate`` after their first piece."""
    return lambda request: openai_app(request, gate)


def openai_app(request: Request, gate: threading.Event | None = None) -> Response:
    if request.headers.get("Authorization") != f"Bearer {OPENAI_KEY}":
        return json_response(
            {
                "error": {
                    "message": "Incorrect API key provided",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            401,
        )
    if request.method == "POST" and request.path == "/v1/audio/speech":
        body = request.get_json()
        speed = float(body.get("speed", 1.0))
        if not 0.25 <= speed <= 4.0:
            return json_response(
                {
                    "error": {
                        "message": f"{speed} is not within [0.25, 4.0] - 'speed'",
                        "type": "invalid_request_error",
                        "param": "speed",
                        "code": "invalid_value",
                    }
                },
                400,
            )
        if str(body["model"]).startswith("gpt-4o-mini-tts"):
            speed = 1.0  # "Does not work with gpt-4o-mini-tts" (OpenAI's API reference)
        seconds = len(body["input"]) * SECONDS_PER_CHAR / speed
        pcm = tone(seconds, 24_000)
        if body.get("response_format") == "wav":
            return Response(wav_bytes(pcm, 24_000), mimetype="audio/wav")
        return Response(streamed(pcm, gate), mimetype="audio/pcm")
    return json_response({"error": {"message": "Not found", "type": "invalid_request_error"}}, 404)


# -- Google Cloud Text-to-Speech (REST) ----------------------------------------------------

GCP_VOICES: list[dict[str, Any]] = [
    {
        "languageCodes": ["en-US"],
        "name": "en-US-Neural2-C",
        "ssmlGender": "FEMALE",
        "naturalSampleRateHertz": 24000,
    },
    {
        "languageCodes": ["en-US"],
        "name": "en-US-News-K",
        "ssmlGender": "FEMALE",
        "naturalSampleRateHertz": 24000,
    },
    {
        "languageCodes": ["en-US"],
        "name": "en-US-Studio-MultiSpeaker",
        "ssmlGender": "SSML_VOICE_GENDER_UNSPECIFIED",
        "naturalSampleRateHertz": 24000,
    },
    {
        "languageCodes": ["cmn-TW"],
        "name": "cmn-TW-Wavenet-B",
        "ssmlGender": "MALE",
        "naturalSampleRateHertz": 24000,
    },
]

_MARK = re.compile(r'<mark name="([^"]+)"\s*/>')
GCP_MAX_INPUT_BYTES = 5_000  # "Total bytes per request" (Cloud TTS quotas)


def gcp_app(request: Request) -> Response:
    if request.method == "GET" and request.path == "/v1beta1/voices":
        return json_response({"voices": GCP_VOICES})
    if request.method == "POST" and request.path == "/v1beta1/text:synthesize":
        body = request.get_json()
        markup = body["input"].get("multiSpeakerMarkup")
        if markup is not None:
            speakers = {turn["speaker"] for turn in markup["turns"]}
            if not speakers <= {"R", "S", "T", "U"} or "MultiSpeaker" not in body["voice"]["name"]:
                return json_response(
                    {
                        "error": {
                            "code": 400,
                            "message": "Bad speaker",
                            "status": "INVALID_ARGUMENT",
                        }
                    },
                    400,
                )
        ssml = (
            escape("".join(turn["text"] for turn in markup["turns"]))
            if markup is not None
            else body["input"].get("ssml") or body["input"].get("text", "")
        )
        if len(ssml.encode()) > GCP_MAX_INPUT_BYTES:
            return json_response(
                {
                    "error": {
                        "code": 400,
                        "message": "Either `input.text` or `input.ssml` is longer than the limit"
                        " of 5000 bytes.",
                        "status": "INVALID_ARGUMENT",
                    }
                },
                400,
            )
        rate = int(body["audioConfig"].get("sampleRateHertz") or 24_000)
        timepoints = []
        spoken = 0
        for piece in re.split(r"(<[^>]+>)", ssml):
            mark = _MARK.fullmatch(piece)
            if mark:
                timepoints.append(
                    {"markName": mark.group(1), "timeSeconds": round(spoken * SECONDS_PER_CHAR, 3)}
                )
            elif not piece.startswith("<"):
                spoken += len(unescape(piece))
        wav = wav_bytes(tone(spoken * SECONDS_PER_CHAR, rate), rate)
        response: dict[str, Any] = {
            "audioContent": base64.b64encode(wav).decode(),
            "audioConfig": body["audioConfig"],
        }
        if body.get("enableTimePointing"):
            response["timepoints"] = timepoints
        return json_response(response)
    return json_response(
        {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}, 404
    )


def serve(app: Any) -> FakeHttpServer:
    """Return a started fake server for ``app`` (use it as a context manager)."""
    return FakeHttpServer(app)
