"""Start and stop the emulators the contract tests run against.

Each emulator runs in its own process group on a free port; ``stop`` ends the whole group,
so the Firestore emulator's java child dies with its launcher script.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Emulator:
    """A running emulator process."""

    process: subprocess.Popen[bytes]
    host: str
    log_path: Path

    def stop(self) -> None:
        """Stop the emulator and every child it started."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # The java child may outlive its launcher: end whatever is left of the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def start_process(
    command: list[str], *, host: str, log_path: Path, ready: Callable[[], bool], timeout: float
) -> Emulator:
    """Start ``command`` in its own process group and wait until ``ready()``."""
    log = log_path.open("wb")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    emulator = Emulator(process, host, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if ready():
            return emulator
        time.sleep(0.25)
    emulator.stop()
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{command[0]} did not become ready in {timeout:.0f}s:\n{tail}")


def http_ok(url: str, expected: str | None = None) -> bool:
    """Return True when ``url`` answers 200 (and its body contains ``expected``)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            body = response.read().decode(errors="replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False
    return expected is None or expected in body


def firestore_emulator_command(port: int) -> list[str]:
    """Return the command starting Google's Firestore emulator from the Cloud SDK."""
    sdk_root = subprocess.run(
        ["gcloud", "info", "--format=value(installation.sdk_root)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    launcher = Path(sdk_root) / "platform" / "cloud-firestore-emulator" / "cloud_firestore_emulator"
    if not launcher.exists():
        raise RuntimeError(
            f"The Firestore emulator is not installed at {launcher}; install the "
            "google-cloud-cli-firestore-emulator package"
        )
    return [str(launcher), "start", "--host=127.0.0.1", f"--port={port}"]
