"""Voice samples benchmark, in one run (issue 16).

1. Processing real-time factor of 30-second samples, embedding included: the
   ``samples.process`` work (read the object, decode, quality, speaker embedding, prosody,
   store the results) over the sample's duration, with the share of each step.
2. Similarity query p50 over 10,000 stored embeddings on the embedded (SQLite) store,
   against a plain numpy brute-force search over the same matrix in the same run: ratio
   numpy / store (target >= 0.8). The first query after a write reads the vectors again;
   its time is printed apart.
3. Training to completion, locally: ``POST /voice-models/train`` until the model reads
   ``completed``, through a gateway served in this process (the in-process task worker
   trains, the embedded storage posts the ``metadata.json`` event, the gateway delivers it
   to ``training-completed``); once with the voice-match table to build, then warm.

Run: ``.venv/bin/python -m bench.samples [--repeat N] [--vectors N] [--table-variants N]``.
``--table-variants N`` builds the voice-match table of the language voice and eSpeak's
first N variants only, not all of them (about 100): a smoke run, whose first training
takes seconds instead of 15-60 s and matches among those few voices only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import tempfile
import time
import uuid
from typing import Any

import numpy as np

from bench.precall import limit_voice_table
from local.gateway import Gateway
from local.serving import Served
from shared.audio.decoding import decode
from shared.audio.prosody import measure_prosody
from shared.audio.quality import assess_quality
from shared.auth import build_dev_verifier
from shared.bootstrap import Container, get_container
from shared.providers.espeak import EspeakProvider
from shared.samples import CAPABILITY as SAMPLES
from shared.samples.model import SampleStatus, VoiceSample
from shared.samples.processing import process_sample
from shared.samples.repository import (
    VOICE_EMBEDDINGS,
    VOICE_SAMPLES,
    SampleRepository,
    embedding_document,
    scope_filters,
)
from shared.store.sqlite import SqliteDocumentStore
from tests.support.processes import free_port
from tests.support.voice_samples import TEXTS, encode, speech

SIMILAR = 10


def p50(values: list[float]) -> float:
    return statistics.median(values)


def thirty_seconds(voice: str = "en-US+f3") -> bytes:
    """Return a WAV file of about 30 s of eSpeak speech."""
    pieces = []
    total = 0
    index = 0
    while total < 30 * 22_050:
        piece = speech(voice, TEXTS[index % len(TEXTS)])
        pieces.append(piece)
        total += len(piece)
        index += 1
    return encode(np.concatenate(pieces)[: 30 * 22_050])


def processing(container: Container, repeat: int) -> None:
    """Part 1."""
    deps = container.deps(SAMPLES)
    data = thirty_seconds()
    audio = decode(data)
    encoder = deps.encoder()
    encoder.embed(audio.samples[:48_000], audio.sample_rate)  # load the weights first
    seconds: list[float] = []
    steps: dict[str, list[float]] = {"decode": [], "quality": [], "embedding": [], "prosody": []}
    for _ in range(repeat):
        # Named outside samples/: the gateway is up, and its storage event would take a
        # sample-named object written before its record for an orphan and delete it.
        sample = VoiceSample(
            user_id="bench",
            name="thirty",
            file_path=f"bench/{uuid.uuid4().hex}.wav",
            status=SampleStatus.UPLOADED,
        )
        deps.blobs.put(deps.bucket, sample.file_path, data, content_type="audio/wav")
        deps.store.set(VOICE_SAMPLES, sample.id, sample.to_document())
        started = time.perf_counter()
        process_sample(deps, sample.id)
        seconds.append(time.perf_counter() - started)
        stored = SampleRepository(deps.store).get(sample.id)
        assert stored is not None
        assert stored.status is SampleStatus.READY, stored
        for step, work in (
            ("decode", lambda: decode(data)),
            ("quality", lambda: assess_quality(audio.samples, audio.sample_rate)),
            ("embedding", lambda: encoder.embed(audio.samples, audio.sample_rate)),
            ("prosody", lambda: measure_prosody(audio.samples, audio.sample_rate)),
        ):
            begun = time.perf_counter()
            work()
            steps[step].append(time.perf_counter() - begun)
    duration = audio.duration_seconds
    print(f"1. processing a {duration:.1f} s sample (wav, 22.05 kHz), {repeat} runs")
    print(
        f"   p50 {p50(seconds) * 1000:.0f} ms: real-time factor {p50(seconds) / duration:.4f} "
        f"(min {min(seconds) / duration:.4f}, max {max(seconds) / duration:.4f})"
    )
    print(
        "   steps p50: "
        + ", ".join(f"{name} {p50(times) * 1000:.0f} ms" for name, times in steps.items())
    )


def similarity(data_dir: str, count: int, repeat: int) -> None:
    """Part 2."""
    store = SqliteDocumentStore(os.path.join(data_dir, "vectors.sqlite3"))
    rng = np.random.default_rng(16)
    # Clusters like speakers: 500 voices, samples scattered around each.
    centres = rng.normal(size=(500, 256))
    matrix = centres[rng.integers(0, 500, count)] + 0.35 * rng.normal(size=(count, 256))
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    ids = [f"s{i:06d}" for i in range(count)]
    for start in range(0, count, 500):
        with store.batch() as batch:
            for i in range(start, min(start + 500, count)):
                sample = VoiceSample(
                    id=ids[i],
                    user_id="bench",
                    name=ids[i],
                    file_path=f"samples/bench/{ids[i]}",
                    status=SampleStatus.READY,
                )
                batch.set(VOICE_EMBEDDINGS, ids[i], embedding_document(sample, matrix[i]))
    repository = SampleRepository(store)
    filters = scope_filters("own", "bench")
    queries = [matrix[i] + 0.05 * rng.normal(size=256) for i in rng.integers(0, count, repeat)]

    def store_search(query: np.ndarray) -> list[str]:
        return [
            n.document.id for n in repository.nearest(list(query), filters=filters, limit=SIMILAR)
        ]

    def numpy_search(query: np.ndarray) -> list[str]:
        unit = query / np.linalg.norm(query)
        distances = 1.0 - matrix @ unit
        nearest = np.argpartition(distances, SIMILAR)[:SIMILAR]
        return [ids[i] for i in nearest[np.argsort(distances[nearest])]]

    started = time.perf_counter()
    store_search(queries[0])
    cold = time.perf_counter() - started
    store_times, numpy_times = [], []
    for query in queries:
        # Alternate, so both see the same machine load.
        begun = time.perf_counter()
        found = store_search(query)
        store_times.append(time.perf_counter() - begun)
        begun = time.perf_counter()
        expected = numpy_search(query)
        numpy_times.append(time.perf_counter() - begun)
        assert found == expected, (found, expected)
    ratio = p50(numpy_times) / p50(store_times)
    print(
        f"2. similarity query, {SIMILAR} nearest of {count:,} embeddings (256-d), {repeat} queries"
    )
    print(
        f"   SQLite store p50 {p50(store_times) * 1000:.2f} ms; numpy brute force p50 "
        f"{p50(numpy_times) * 1000:.2f} ms; ratio numpy/store {ratio:.2f} "
        f"(target >= 0.8: {'PASS' if ratio >= 0.8 else 'NOT MET'})"
    )
    print(f"   first query after a write (reads the {count:,} vectors again): {cold * 1000:.0f} ms")
    store.close()


def call(
    conn: http.client.HTTPConnection, token: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def upload(conn: http.client.HTTPConnection, token: str, data: bytes) -> str:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    conn.request("POST", "/samples", body=body, headers=headers)
    response = conn.getresponse()
    payload = json.loads(response.read())
    assert response.status == 201, payload
    return str(payload["id"])


def wait(conn: http.client.HTTPConnection, token: str, path: str, done: set[str]) -> Any:
    while True:
        status, body = call(conn, token, "GET", path)
        assert status == 200, body
        if body["status"] in done:
            return body
        time.sleep(0.02)


def start_gateway(container: Container) -> Served:
    """Serve the gateway on the settings' port; return the server.

    Built before anything touches the object storage: the gateway wires the storage's
    event bridge as the storage is built.
    """
    server = Served(Gateway(container), port=container.settings.gateway_port)
    container.tasks.queue.start()
    return server


def training(container: Container, repeat: int) -> None:
    """Part 3."""
    port = container.settings.gateway_port
    token = build_dev_verifier(container.settings).mint("bench-trainer")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    sample_ids = [upload(conn, token, encode(speech("en-US+f2", TEXTS[i]))) for i in range(3)]
    for sample_id in sample_ids:
        wait(conn, token, f"/samples/{sample_id}", {"ready"})
    times = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        status, model = call(conn, token, "POST", "/voice-models/train", {"sampleIds": sample_ids})
        assert status == 202, model
        model = wait(conn, token, f"/voice-models/{model['id']}", {"completed", "failed"})
        assert model["status"] == "completed", model
        times.append(time.perf_counter() - started)
    espeak = container.providers.get("espeak")
    assert isinstance(espeak, EspeakProvider)
    voices = 1 + len(espeak.variant_names())
    print(f"3. training to completion through the local gateway, 3 samples ({repeat} warm runs)")
    print(
        f"   first (builds the voice-match table of en-US, {voices} voices): {times[0]:.1f} s; "
        f"then p50 {p50(times[1:]):.2f} s (min {min(times[1:]):.2f}, max {max(times[1:]):.2f})"
    )


def main() -> None:
    """Run the three parts and print their figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--vectors", type=int, default=10_000)
    parser.add_argument(
        "--table-variants",
        type=int,
        metavar="N",
        help="voice-match table of eSpeak's first N variants only (a smoke run; default: all)",
    )
    args = parser.parse_args()
    limit_voice_table(args.table_variants)
    data_dir = tempfile.mkdtemp(prefix="bench-samples-")
    os.environ.update(
        {
            "VOICE_DATA_DIR": data_dir,
            "VOICE_ENVIRONMENT": "test",
            "VOICE_SCHEDULER_ENABLED": "false",
            "VOICE_PROVIDERS": "espeak",
            "VOICE_LOG_LEVEL": "WARNING",
            "VOICE_GATEWAY_PORT": str(free_port()),
            "VOICE_TASKS_POLL_SECONDS": "0.02",
            # Every training here counts as a model creation.
            "VOICE_RATE_LIMIT_MODEL_CREATES_PER_HOUR": "1000",
        }
    )
    container = get_container()  # the settings are read now, from the environment above
    server = start_gateway(container)
    processing(container, args.repeat)
    similarity(data_dir, args.vectors, args.queries)
    training(container, args.repeat)
    server.close()
    container.close()


if __name__ == "__main__":
    main()
