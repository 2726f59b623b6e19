"""The developer console in a real browser: Debian's Chromium driven by Playwright.

Playwright for Python drives the system's ``chromium`` (``make test`` installs it with
apt when it is missing; Playwright never downloads a browser here). One gateway process
and one browser serve every test of a module; the browser's microphone is a WAV file of
recorded speech (Chromium's fake capture device). A failing test leaves a screenshot
under ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.support.gateway_process import GatewayProcess, start_gateway

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SPEECH = ROOT / "tests" / "data" / "speech"
MICROPHONE_PHRASE = "what-is-the-weather-like-today.en-US.16000.flac"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def chromium_path() -> str:
    """Return the system Chromium (VOICE_TEST_CHROMIUM overrides); fail when it is missing."""
    path = os.environ.get("VOICE_TEST_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is not installed: `make browser` installs Debian's chromium")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


class StoryAgent(BaseHTTPRequestHandler):
    """A session agent webhook (``shared.sessions.agent_http.WebhookAgent``'s wire format:
    ``{"text", "history", ...}`` in, ``{"text"}`` out) that tells a long story when asked
    for one, so that there is a reply long enough to talk over."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = request["text"].lower()
        reply = LONG_STORY if "story" in text else f"You interrupted me to say: {text}"
        body = json.dumps({"text": reply}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


LONG_STORY = " ".join(
    f"Chapter {n}: the boats left the harbour at dawn and came back late with the tide."
    for n in range(1, 9)
)


@pytest.fixture(scope="session")
def story_agent() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StoryAgent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/agent"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, story_agent: str) -> Iterator[GatewayProcess]:
    """One gateway for every browser test; sessions may use the story-telling webhook."""
    running = start_gateway(
        tmp_path_factory.mktemp("console-gateway"),
        VOICE_SESSIONS_AGENTS="local,webhook",
        VOICE_SESSIONS_AGENT_WEBHOOK_URL=story_agent,
    )
    yield running
    running.stop()


@pytest.fixture(scope="session")
def voice_table(gateway: GatewayProcess) -> threading.Thread:
    """The voice-match table warming in the background while the other tests run (the
    first build takes 15-60 s, or more on a busy machine; once per test process)."""
    return gateway.warm_voice_table()


def microphone_file(folder: Path, *parts: str | float) -> Path:
    """Write what the fake microphone plays: recorded phrases (file names under
    tests/data/speech) and seconds of silence, in order, as one 16 kHz WAV."""
    rate = 16_000
    pieces = []
    for part in parts:
        if isinstance(part, str):
            speech, found = soundfile.read(SPEECH / part, dtype="int16")
            assert found == rate, part
            pieces.append(speech)
        else:
            pieces.append(np.zeros(int(part * rate), "int16"))
    path = folder / "microphone.wav"
    soundfile.write(path, np.concatenate(pieces), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The question the fake microphone speaks: 1 s of silence (capture starts late), the
    recorded speech, then silence long enough for the turn to end and the reply to play."""
    return microphone_file(tmp_path_factory.mktemp("microphone"), 1.0, MICROPHONE_PHRASE, 10.0)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, microphone_wav: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium_path(),
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={microphone_wav}%noloop"],
            viewport={"width": 1200, "height": 900},
        )
        context.set_default_timeout(30_000)
        yield context
        context.close()


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    """A new tab; page errors and CSP violations fail the test; a screenshot on failure."""
    tab = browser.new_page()  # type: ignore[attr-defined]
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"{request.node.name}.png"
        tab.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
    tab.close()
    assert problems == []
