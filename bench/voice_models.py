"""Voice-model API through the local gateway over HTTP, against a bare function, in one run.

Starts the gateway (``python -m local.gateway``) on a free port with a fresh data folder,
seeds 50 models for one user, then measures with keep-alive HTTP clients:

* ``GET /voice-models/user/{id}?limit=50`` with the shared cache on (and, for
  comparison, on a second gateway run with ``VOICE_VOICE_MODEL_CACHE_ENABLED=false``);
* ``POST /voice-models/{id}/activate`` (each client alternates between two models of its
  own user, so every call is a real activation transaction);
* a bare functions-framework function returning a constant JSON body, served the same way
  (waitress, 8 threads, its own process); the body is the list route's own answer (same
  bytes), so the ratio measures the platform's work, not the payload's transfer.

Prints requests per second, p50 and p99 for each, the ratio list/bare (target >= 0.5 with
caching on), and the sequential latency of a cache hit against a miss (the miss forced by
bumping the list's cache scope in the store before each request).

Run: ``.venv/bin/python -m bench.voice_models [--seconds S] [--clients N]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
USER = "bench-user"
MODELS = 50


def wait_until_up(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


@contextmanager
def serve(args: list[str], env: dict[str, str], port: int, ready_path: str) -> Iterator[None]:
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until_up(port, ready_path, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def gateway_env(data_dir: Path, port: int, *, cache: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_") and k != "K_SERVICE"}
    env.update(
        {
            "VOICE_DATA_DIR": str(data_dir),
            "VOICE_GATEWAY_PORT": str(port),
            "VOICE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "VOICE_LOG_LEVEL": "WARNING",
            # A fresh gateway syncs the voice catalog in the background; keep that sync
            # small (one voice per eSpeak language) so it does not run during the timing.
            "VOICE_ESPEAK_VARIANT_LANGUAGES": "",
            "VOICE_RATE_LIMIT_MODEL_CREATES_PER_HOUR": "100000",
            "VOICE_VOICE_MODEL_CACHE_ENABLED": "true" if cache else "false",
        }
    )
    return env


def mint(env: dict[str, str], user: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "local.token", "--user", user],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def call(
    conn: http.client.HTTPConnection, method: str, path: str, token: str | None, body: Any = None
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def load(
    port: int,
    seconds: float,
    clients: int,
    make_request: Callable[[int, int], tuple[str, str, Any]],
) -> dict[str, float]:
    """Run ``clients`` keep-alive clients for ``seconds``; return rps, p50 and p99 in ms."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        count = 0
        while time.monotonic() < stop:
            method, path, body = make_request(index, count)
            token = body.pop("__token__", None) if isinstance(body, dict) else None
            started = time.perf_counter()
            status, _ = call(conn, method, path, token, body if body else None)
            latencies[index].append(time.perf_counter() - started)
            if status >= 300:
                errors[index] += 1
            count += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    merged = sorted(x for per in latencies for x in per)
    if sum(errors):
        raise RuntimeError(f"{sum(errors)} requests failed")
    return {
        "rps": len(merged) / elapsed,
        "p50_ms": 1000 * merged[len(merged) // 2],
        "p99_ms": 1000 * merged[int(len(merged) * 0.99) - 1],
    }


BARE_FUNCTION = textwrap.dedent(
    """
    import pathlib
    import functions_framework

    # The same bytes the list route answers, so both sides move the same payload.
    BODY = (pathlib.Path(__file__).parent / "body.json").read_text()

    @functions_framework.http
    def bare(request):
        return (BODY, 200, {"Content-Type": "application/json"})
    """
)

BARE_SERVER = textwrap.dedent(
    """
    import sys
    import functions_framework
    from waitress.server import create_server

    app = functions_framework.create_app("bare", sys.argv[1])
    create_server(app, host="127.0.0.1", port=int(sys.argv[2]), threads=8).run()
    """
)


def bare_server(folder: Path, body: bytes) -> tuple[list[str], int]:
    (folder / "body.json").write_bytes(body)
    source = folder / "bare_main.py"
    source.write_text(BARE_FUNCTION)
    server = folder / "bare_server.py"
    server.write_text(BARE_SERVER)
    port = free_port()
    return [sys.executable, str(server), str(source), str(port)], port


def interleaved(
    rounds: int, seconds: float, runs: dict[str, Callable[[float], dict[str, float]]]
) -> dict[str, dict[str, float]]:
    """Alternate short runs of each benchmark so machine noise hits them alike."""
    parts: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            parts[name].append(run(seconds / rounds))
    return {
        name: {
            "rps": statistics.fmean(p["rps"] for p in results),
            "p50_ms": statistics.median(p["p50_ms"] for p in results),
            "p99_ms": max(p["p99_ms"] for p in results),
        }
        for name, results in parts.items()
    }


def seed(
    port: int, token: str, users: list[tuple[str, str]]
) -> tuple[list[str], dict[str, list[str]]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ids = []
    for i in range(MODELS):
        body = {
            "provider": "xtts-v2",
            "modelPath": f"models/{USER}/model-{i}.pth",
            "qualityScore": round(0.3 + i * 0.01, 2),
            "metadata": {"version": "1.0", "trainingDuration": "15min", "index": i},
        }
        status, raw = call(conn, "POST", "/voice-models", token, body)
        assert status == 201, raw
        ids.append(json.loads(raw)["id"])
    pairs: dict[str, list[str]] = {}
    for user, user_token in users:
        for _ in range(2):
            body = {"provider": "espeak", "modelPath": f"models/{user}/m.pth", "qualityScore": 0.5}
            status, raw = call(conn, "POST", "/voice-models", user_token, body)
            assert status == 201, raw
            pairs.setdefault(user, []).append(json.loads(raw)["id"])
    conn.close()
    return ids, pairs


def hit_and_miss(port: int, token: str, data_dir: Path, rounds: int = 200) -> dict[str, float]:
    from shared.store.cache import DocumentCache
    from shared.store.sqlite import SqliteDocumentStore
    from shared.voice_models.deps import user_models_scope

    store = SqliteDocumentStore(data_dir / "store.sqlite3")
    cache = DocumentCache(store)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    path = f"/voice-models/user/{USER}?limit=50"
    hits, misses = [], []
    for _ in range(rounds):
        call(conn, "GET", path, token)
        started = time.perf_counter()
        call(conn, "GET", path, token)
        hits.append(time.perf_counter() - started)
        cache.invalidate([user_models_scope(USER)])
        started = time.perf_counter()
        call(conn, "GET", path, token)
        misses.append(time.perf_counter() - started)
    conn.close()
    store.close()
    return {
        "hit_p50_ms": 1000 * statistics.median(hits),
        "miss_p50_ms": 1000 * statistics.median(misses),
    }


def report(name: str, figures: dict[str, float]) -> None:
    print(
        f"{name:<38} {figures['rps']:>8.0f} req/s   p50 {figures['p50_ms']:>6.2f} ms"
        f"   p99 {figures['p99_ms']:>6.2f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved bare/list rounds")
    options = parser.parse_args()
    clients = options.clients
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data_dir = folder / "data"
        port = free_port()
        env = gateway_env(data_dir, port, cache=True)
        args = [sys.executable, "-m", "local.gateway"]
        with serve(args, env, port, "/healthz"), ExitStack() as stack:
            token = mint(env, USER)
            users = [(f"bench-act-{i}", mint(env, f"bench-act-{i}")) for i in range(clients)]
            _, pairs = seed(port, token, users)
            list_path = f"/voice-models/user/{USER}?limit=50"
            _, list_body = call(
                http.client.HTTPConnection("127.0.0.1", port, timeout=10), "GET", list_path, token
            )
            bare_args, bare_port = bare_server(folder, list_body)
            stack.enter_context(serve(bare_args, dict(os.environ), bare_port, "/"))
            print(f"both sides answer {len(list_body)} bytes of JSON")
            figures = interleaved(
                options.rounds,
                options.seconds,
                {
                    "bare": lambda s: load(bare_port, s, clients, lambda i, n: ("GET", "/", None)),
                    "list": lambda s: load(
                        port, s, clients, lambda i, n: ("GET", list_path, {"__token__": token})
                    ),
                },
            )
            bare, cached = figures["bare"], figures["list"]
            report("bare function (constant JSON)", bare)
            report("GET /voice-models/user/{id} (cache on)", cached)

            def activate(i: int, n: int) -> tuple[str, str, Any]:
                user, user_token = users[i]
                model_id = pairs[user][(n + 1) % 2]  # the one not active now
                return "POST", f"/voice-models/{model_id}/activate", {"__token__": user_token}

            activated = load(port, options.seconds, options.clients, activate)
            report("POST /voice-models/{id}/activate", activated)
            latency = hit_and_miss(port, token, data_dir)

        port = free_port()
        env = gateway_env(data_dir, port, cache=False)
        with serve(args, env, port, "/healthz"):
            uncached = load(
                port,
                options.seconds,
                options.clients,
                lambda i, n: ("GET", list_path, {"__token__": token}),
            )
            report("GET /voice-models/user/{id} (cache off)", uncached)

    print(f"list (cache on) / bare:  {cached['rps'] / bare['rps']:.2f}  (target >= 0.5)")
    print(f"list (cache off) / bare: {uncached['rps'] / bare['rps']:.2f}")
    print(f"activate / bare:         {activated['rps'] / bare['rps']:.2f}")
    print(
        f"single-client list latency, 50 models: cache hit p50 {latency['hit_p50_ms']:.2f} ms, "
        f"miss p50 {latency['miss_p50_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()
