"""``python -m local.gateway`` (what ``make run`` starts) as a process on free ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.auth import build_dev_verifier
from shared.config import Settings
from tests.support.processes import free_port, http_ok
from tests.support.voice_samples import warm_voice_table

ROOT = Path(__file__).resolve().parents[2]
DEV_SECRET = "console-tests-" + "k" * 40


@dataclass
class GatewayProcess:
    """A running gateway: its HTTP and session ports, its log, and tokens it accepts."""

    process: subprocess.Popen[bytes]
    port: int
    sessions_port: int
    data_dir: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, user: str, *, admin: bool = False) -> str:
        """Return a dev token the gateway accepts."""
        settings = Settings(data_dir=self.data_dir, dev_auth_secret=DEV_SECRET)
        return build_dev_verifier(settings).mint(user, admin=admin)

    def warm_voice_table(self) -> threading.Thread:
        """Start putting the en-US voice-match table in the gateway's storage, in the
        background (``warm_voice_table``): training there then need not build it."""
        settings = Settings(_env_file=None, data_dir=self.data_dir)
        warming = threading.Thread(target=warm_voice_table, args=(settings,), daemon=True)
        warming.start()
        return warming

    def stop(self) -> None:
        """Stop the gateway (SIGTERM, then SIGKILL if it lingers)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gateway(
    folder: Path, *, probe_token: Callable[[], str] | None = None, **environment: str
) -> GatewayProcess:
    """Start the gateway with a fresh data directory under ``folder``; wait until its
    session service is ready (Whisper loaded) and the catalog's first sync has run (asked
    with ``probe_token()``, by default a dev token). Free ports are free only when asked
    for: a gateway whose port another process took first starts again on new ones."""
    for _ in range(3):
        gateway = _start(folder, probe_token, environment)
        if gateway is not None:
            return gateway
    raise RuntimeError("three gateways in a row found their port taken")


def _start(
    folder: Path, probe_token: Callable[[], str] | None, environment: dict[str, str]
) -> GatewayProcess | None:
    port, sessions_port = free_port(), free_port()
    data_dir = folder / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_") and k != "K_SERVICE"}
    env |= {
        "VOICE_DATA_DIR": str(data_dir),
        "VOICE_GATEWAY_PORT": str(port),
        "VOICE_SESSIONS_PORT": str(sessions_port),
        "VOICE_DEV_AUTH_SECRET": DEV_SECRET,
        "VOICE_ESPEAK_VARIANT_LANGUAGES": "en-us,en-gb",
        **environment,
    }
    log = folder / "gateway.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.gateway"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    gateway = GatewayProcess(process, port, sessions_port, data_dir, log)
    deadline = time.monotonic() + 90
    # Its own banner and session service, not just an answer on the ports.
    while f"listening on {gateway.base}" not in log.read_text() or not http_ok(
        f"http://127.0.0.1:{sessions_port}/readyz"
    ):
        if "is taken" in log.read_text():  # its port, or its session service's
            gateway.stop()
            return None
        if process.poll() is not None or time.monotonic() > deadline:
            gateway.stop()
            raise RuntimeError(f"the gateway did not become ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    while not _has_voices(gateway, probe_token() if probe_token else gateway.token("probe")):
        if time.monotonic() > deadline:
            gateway.stop()
            raise RuntimeError(f"the catalog never filled:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return gateway


def _has_voices(gateway: GatewayProcess, token: str) -> bool:
    request = urllib.request.Request(  # noqa: S310 - loopback only
        f"{gateway.base}/voices?limit=1",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return bool(json.loads(response.read())["voices"])
    except OSError:
        return False
