"""gcloud-tasks-emulator in its own virtualenv, started on a free port for the contract tests.

The emulator pins protobuf<5, which the platform's own packages cannot share, so it lives
in ``.venv-tasks-emulator`` at the repository root, installed from the pinned
``tasks-emulator-requirements.txt``. A stamp file holding the requirements' hash makes the
install happen once (and again only when the pins change).
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import venv
from pathlib import Path

from tests.support.processes import Emulator, free_port, start_process

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-tasks-emulator"
REQUIREMENTS = Path(__file__).resolve().parent / "tasks-emulator-requirements.txt"
STAMP = VENV / ".requirements-sha256"


def ensure_emulator_venv() -> Path:
    """Create or refresh the emulator's virtualenv; return its ``gcloud-tasks-emulator``."""
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    executable = VENV / "bin" / "gcloud-tasks-emulator"
    if executable.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return executable
    if not (VENV / "bin" / "python").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    result = subprocess.run(
        [
            str(VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"Cannot install gcloud-tasks-emulator:\n{result.stderr[-3000:]}")
    STAMP.write_text(wanted + "\n")
    return executable


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_tasks_emulator(log_path: Path, *, queues: list[str], max_retries: int = 10) -> Emulator:
    """Start the emulator on a free port with ``queues`` (full names); return it when ready.

    ``max_retries`` is the emulator's own retry cap; our handler dead-letters at the
    queue policy's max attempts before that, since the emulator ignores retry config.
    """
    executable = ensure_emulator_venv()
    port = free_port()
    command = [str(executable), "start", f"--port={port}", f"-r={max_retries}", "-q"]
    for queue in queues:
        command.append(f"-d={queue}")
    return start_process(
        command,
        host=f"127.0.0.1:{port}",
        log_path=log_path,
        ready=lambda: _listening(port),
        timeout=60,
    )


if __name__ == "__main__":
    print(ensure_emulator_venv())
    sys.exit(0)
