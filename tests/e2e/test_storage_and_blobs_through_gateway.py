"""The gateway's stand-ins for Google: signed blob downloads and Eventarc storage events."""

from __future__ import annotations

import json
import textwrap
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from functions import FunctionSpec
from local.gateway import Gateway
from local.serving import Served
from shared.bootstrap import Container
from shared.config import Settings
from tests.support.processes import free_port

SUBSCRIBER = """
import json, os
import functions_framework

@functions_framework.cloud_event
def on_sample_uploaded(event):
    record = {"attributes": dict(event.get_attributes()), "data": event.data}
    with open(os.environ["EVENT_LOG"], "a") as log:
        log.write(json.dumps(record) + "\\n")
"""


@pytest.fixture
def running_gateway(tmp_path, monkeypatch):
    port = free_port()
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("EVENT_LOG", str(log))
    source = tmp_path / "subscriber.py"
    source.write_text(textwrap.dedent(SUBSCRIBER))
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path / "data",
        gateway_port=port,
        public_base_url=f"http://127.0.0.1:{port}",
    )
    container = Container(settings)
    spec = FunctionSpec(
        name="on_sample_uploaded",
        module="subscriber",
        trigger="storage",
        bucket_setting="models_bucket",
    )
    gateway = Gateway(container, [spec], source=source)
    served = Served(gateway, port=port, threads=4)
    yield container, f"http://127.0.0.1:{port}", log
    served.close()
    container.close()


def fetch(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def wait_for_lines(path: Path, count: int, timeout: float = 15) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    raise AssertionError(f"expected {count} events in {path}")


def test_finalized_object_reaches_the_subscribed_function_as_eventarc_sends_it(running_gateway):
    container, _, log = running_gateway
    settings = container.settings
    info = container.blobs.put(
        settings.models_bucket, "models/ann/take1.wav", b"RIFF....", content_type="audio/wav"
    )
    container.blobs.put(settings.audio_bucket, "audio/x.wav", b"x", content_type="audio/wav")
    (event,) = wait_for_lines(log, 1)
    attributes, data = event["attributes"], event["data"]
    assert attributes["type"] == "google.cloud.storage.object.v1.finalized"
    assert (
        attributes["source"]
        == f"//storage.googleapis.com/projects/_/buckets/{settings.models_bucket}"
    )
    assert attributes["subject"] == "objects/models/ann/take1.wav"
    assert data["bucket"] == settings.models_bucket
    assert data["name"] == "models/ann/take1.wav"
    assert data["contentType"] == "audio/wav"
    assert data["size"] == "8"
    assert data["md5Hash"] == info.md5_hash
    assert data["generation"] == str(info.generation)
    assert data["timeCreated"].endswith("Z")
    # The audio bucket has no subscriber: nothing else was delivered.
    time.sleep(0.3)
    assert len(wait_for_lines(log, 1)) == 1


def test_signed_urls_are_served_with_range_and_refused_when_forged(running_gateway):
    container, base, _ = running_gateway
    bucket = container.settings.audio_bucket
    container.blobs.put(bucket, "audio/ann/hello.wav", b"0123456789", content_type="audio/wav")
    url = container.blobs.signed_url(bucket, "audio/ann/hello.wav", expires_in=timedelta(minutes=5))
    assert url.startswith(f"{base}/_blobs/")
    status, body, headers = fetch(url)
    assert (status, body, headers["Content-Type"]) == (200, b"0123456789", "audio/wav")
    status, body, headers = fetch(url, {"Range": "bytes=2-4"})
    assert (status, body, headers["Content-Range"]) == (206, b"234", "bytes 2-4/10")
    status, body, _ = fetch(url.replace("signature=", "signature=0"))
    assert status == 403
    assert json.loads(body)["code"] == "ACCESS_DENIED"
    expired = container.blobs.signed_url(
        bucket, "audio/ann/hello.wav", expires_in=timedelta(seconds=1)
    )
    time.sleep(2.1)
    assert fetch(expired)[0] == 403
