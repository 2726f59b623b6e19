"""The service's entry point and image: ``python -m session`` honours PORT; the image is lean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def status_of(url: str) -> int | None:
    try:
        # Loopback http URLs built by the test only.
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310
            return int(reply.status)
    except urllib.error.HTTPError as refused:
        return refused.code
    except OSError:
        return None


def test_python_m_session_serves_on_cloud_runs_port(tmp_path: Path):
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("VOICE_")}
    environment.update(
        {
            "PORT": str(port),
            "VOICE_DATA_DIR": str(tmp_path),
            "VOICE_DEV_AUTH_SECRET": "s" * 40,
            "VOICE_ENVIRONMENT": "test",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "session"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while status_of(f"http://127.0.0.1:{port}/readyz") != 200:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "the service never became ready"
            time.sleep(0.2)
        assert status_of(f"http://127.0.0.1:{port}/healthz") == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status shows it.
    assert process.returncode in (0, -signal.SIGTERM)
    text = output.decode()
    assert f"ws://127.0.0.1:{port}/v1/sessions" in text
    assert "Application shutdown complete" in text


def test_the_image_is_slim_non_root_and_runs_the_service():
    dockerfile = (ROOT / "session" / "Dockerfile").read_text()
    stages = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert all(image == "python:3.11-slim" for image in stages)
    user = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert user
    assert user[-1] not in ("root", "0")
    assert 'CMD ["python", "-m", "session"]' in dockerfile
    assert "pip install -r /tmp/requirements.txt" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"tests", ".venv", ".data"} <= set(ignored)
