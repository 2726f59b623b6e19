"""Bad input over a real WebSocket: a clear error event or close code, and nothing breaks."""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from session.server import CLOSE_TIMEOUT_SECONDS
from shared.auth import DEV_ISSUER
from shared.errors import ECHO_LIMIT
from shared.sessions.model import MAX_CUSTOM_PROCESSORS
from shared.sessions.processors import FrameProcessor
from tests.sessions.support import Client, FlakyStore, counted_by_code, silence, speech


def closed_code(client: Client, timeout: float = 10) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        client.wait_for("never", timeout=timeout)
    assert closed.value.rcvd is not None
    return int(closed.value.rcvd.code)


def test_bad_messages_get_error_events_and_the_session_keeps_working(start_service):
    service = start_service()
    client = Client(service.url, service.token("mallory"))

    client.ws.send(b"\x00\x01" * 160)
    assert client.wait_for("error")["code"] == "NOT_STARTED"
    client.ws.send("{not json")
    assert client.wait_for("error")["code"] == "MALFORMED_JSON"
    client.send({"type": "dance"})
    assert client.wait_for("error")["code"] == "UNKNOWN_MESSAGE_TYPE"
    client.send({"type": "ping", "id": "x" * 65})
    assert client.wait_for("error")["code"] == "INVALID_MESSAGE"
    client.send({"type": "update_metadata", "metadata": {"a": 1}})
    assert client.wait_for("error")["code"] == "NOT_STARTED"

    # (config, field the problem is reported on, words of its message)
    invalid_configs = [
        ({"pipeline": {"sttProvider": "nonesuch"}}, "pipeline.sttProvider", "not enabled"),
        ({"pipeline": {"type": "stt_tts", "sttProvider": None}}, "pipeline", "needs sttProvider"),
        ({"pipeline": {"latencyTarget": 0}}, "pipeline", "latencyTarget must be greater"),
        (
            {"pipeline": {"customProcessors": [{"name": "gain"}, {"name": "gain"}]}},
            "pipeline",
            "names must be unique",
        ),
        (
            {"pipeline": {"customProcessors": [{"name": "loud", "order": -1}]}},
            "pipeline.customProcessors.0.order",
            "greater than or equal to 0",
        ),
        (
            {"pipeline": {"customProcessors": [{"name": "loud", "kind": "nonesuch"}]}},
            "pipeline.customProcessors.loud",
            "Unknown custom processor kind",
        ),
        ({"pipeline": {"type": "s2s", "s2sProvider": "nonesuch"}}, "pipeline.s2sProvider", ""),
        ({"language": "fr-FR"}, "language", "English only"),
        ({"agent": {"name": "nonesuch"}}, "agent.name", "unknown agent"),
        ({"audio": {"sampleRate": 12345}}, "audio.sampleRate", ""),
        ({"surprise": True}, "surprise", "Extra inputs"),
        ({"backend": "livekit"}, "backend", "unknown backend"),
        (
            {"backend": "pipecat", "pipeline": {"type": "s2s", "s2sProvider": "embedded"}},
            "pipeline.type",
            "backend pipecat cannot run s2s",
        ),
    ]
    for config, field, fragment in invalid_configs:
        client.send({"type": "start", "config": config})
        error = client.wait_for("error")
        assert error["code"] == "INVALID_CONFIG", (config, error)
        assert any(
            detail["field"] == field and fragment in detail["message"]
            for detail in error["details"]
        ), (config, error["details"])

    started = client.start({"metadata": {"device": "test"}})
    client.send({"type": "start"})
    assert client.wait_for("error")["code"] == "ALREADY_STARTED"
    client.ws.send(b"\x00" * 321)
    assert client.wait_for("error")["code"] == "INVALID_AUDIO_FRAME"
    client.ws.send(b"\x00" * (70 * 1024))
    assert client.wait_for("error")["code"] == "AUDIO_FRAME_TOO_LARGE"
    client.send({"type": "update_metadata", "metadata": {"screen": "home", "device": None}})
    assert client.wait_for("metadata.updated")["metadata"] == {"screen": "home"}
    client.send({"type": "ping", "id": "p"})
    assert client.wait_for("pong")["id"] == "p"

    # After all that, the same session still hears and answers.
    client.stream(silence(0.3) + speech("Thank you very much.") + silence(1.0))
    assert client.wait_for("transcript.final")["text"].lower().startswith("thank you")
    client.wait_for("audio.started")
    stored = service.container.services.repository.get(started["sessionId"])
    assert stored is not None
    assert stored.metadata == {"screen": "home"}
    client.close()


def test_a_pipeline_stacking_more_custom_processors_than_the_limit_is_refused(start_service):
    service = start_service()
    client = Client(service.url, service.token("mallory"))

    def gains(count: int) -> dict[str, object]:
        processors = [
            {"name": f"gain{index}", "kind": "gain", "options": {"gainDb": 1}}
            for index in range(count)
        ]
        return {"pipeline": {"customProcessors": processors}}

    client.send({"type": "start", "config": gains(1000)})
    error = client.wait_for("error")
    assert error["code"] == "INVALID_CONFIG"
    assert [detail["field"] for detail in error["details"]] == ["pipeline.customProcessors"]
    assert str(MAX_CUSTOM_PROCESSORS) in error["details"][0]["message"]

    # At the limit the session starts and still hears.
    client.start(gains(MAX_CUSTOM_PROCESSORS))
    client.stream(silence(0.3) + speech("Thank you very much.") + silence(1.0))
    assert client.wait_for("transcript.final")["text"].lower().startswith("thank you")
    client.close()


def test_an_unknown_message_type_is_echoed_cut_short(start_service):
    service = start_service()
    client = Client(service.url, service.token("mallory"))

    client.send({"type": "x" * 10_000})
    error = client.wait_for("error")
    assert error["code"] == "UNKNOWN_MESSAGE_TYPE"
    # The type as the message quotes it, cut at the platform's echo limit.
    assert "'" + "x" * (ECHO_LIMIT - 1) + "\u2026" in error["message"]
    assert "x" * ECHO_LIMIT not in error["message"]
    client.close()


def test_a_metadata_key_that_is_not_unicode_text_is_named_readably(start_service):
    # A lone surrogate is valid in a JSON escape but not in Unicode text: such a key came
    # back in the field path as three U+FFFD and "[key]" (and a long one whole).
    service = start_service()
    client = Client(service.url, service.token("mallory"))
    long_key = "k" * 100 + "\\udfff"
    client.ws.send(
        '{"type": "start", "config": {"metadata": {"\\ud800": 1, "device": "ok", "'
        + long_key
        + '": 2}}}'
    )
    frame = client.ws.recv(timeout=30)
    assert isinstance(frame, str)
    error = json.loads(frame)
    assert (error["type"], error["code"]) == ("error", "INVALID_CONFIG"), error
    assert [detail["field"] for detail in error["details"]] == [
        "metadata.\\ud800",
        "metadata." + "k" * ECHO_LIMIT + "\u2026",
    ]
    assert all("lone surrogate" in detail["message"] for detail in error["details"])
    for text in [detail["field"] for detail in error["details"]] + [error["message"]]:
        text.encode("utf-8")  # valid Unicode text, no surrogate left in it
        assert "\ufffd" not in text

    # The same key in update_metadata is named the same way.
    client.start()
    client.ws.send('{"type": "update_metadata", "metadata": {"\\ud800": 1}}')
    error = client.wait_for("error")
    assert error["code"] == "INVALID_MESSAGE"
    assert "metadata.\\ud800: " in error["message"]
    assert "lone surrogate" in error["message"]
    assert "\ufffd" not in error["message"]
    client.close()


def invalid_config_details(client: Client, config_json: str) -> list[dict[str, str]]:
    """Return the details of the INVALID_CONFIG refusal of a start with ``config_json``."""
    client.ws.send('{"type": "start", "config": ' + config_json + "}")
    error = client.wait_for("error")
    assert error["code"] == "INVALID_CONFIG", error
    for detail in error["details"]:
        json.dumps(detail, ensure_ascii=False).encode("utf-8")  # no surrogate left in it
        assert "\ufffd" not in detail["message"] + detail["field"]
    return error["details"]


def test_custom_processor_options_are_named_readably(start_service):
    service = start_service()
    client = Client(service.url, service.token("mallory"))
    long_name = "q" * 3000

    def gain(options: str) -> str:
        processor = '{"name": "loud", "kind": "gain", "options": {' + options + "}}"
        return '{"pipeline": {"customProcessors": [' + processor + "]}}"

    # An unknown option is repeated as any value a caller sent: cut at the echo limit.
    [detail] = invalid_config_details(client, gain('"gainDb": 3, "' + long_name + '": 1'))
    assert detail["field"] == "pipeline.customProcessors.loud"
    assert "unknown options " + "q" * ECHO_LIMIT + "\u2026" in detail["message"]
    assert "q" * (ECHO_LIMIT + 1) not in detail["message"]

    # An option key holding a lone surrogate is named by its escape.
    [detail] = invalid_config_details(client, gain('"\\ud800": 1'))
    assert detail["field"] == "pipeline.customProcessors.loud"
    assert "options key \\ud800 is not valid Unicode text" in detail["message"]
    assert "lone surrogate" in detail["message"]

    # Every kind's options are checked before its factory sees them, nested keys too.
    built = []
    service.container.services.processors.register(
        "tagger", lambda config: built.append(config) or FrameProcessor()
    )
    [detail] = invalid_config_details(
        client,
        '{"pipeline": {"customProcessors": [{"name": "tags", "kind": "tagger", '
        '"options": {"labels": [{"\\udfff": 1}]}}]}}',
    )
    assert detail["field"] == "pipeline.customProcessors.tags"
    assert "options key labels.0.\\udfff is not valid Unicode text" in detail["message"]
    assert built == []

    # After all that, a good config starts.
    loud = {"name": "loud", "kind": "gain", "options": {"gainDb": 3}}
    client.start({"pipeline": {"customProcessors": [loud]}})
    client.close()


def test_a_disabled_processors_options_are_checked_as_an_enabled_ones_are(start_service):
    # A disabled processor is never built, so its options went unchecked: a key holding a
    # lone surrogate was stored with the session's config (as U+FFFD).
    service = start_service()
    client = Client(service.url, service.token("mallory"))

    def disabled(kind: str, options: str) -> str:
        processor = (
            '{"name": "later", "kind": "'
            + kind
            + '", "enabled": false, "options": {'
            + options
            + "}}"
        )
        return '{"pipeline": {"customProcessors": [' + processor + "]}}"

    [detail] = invalid_config_details(client, disabled("gain", '"\\ud800": 1'))
    assert detail["field"] == "pipeline.customProcessors.later"
    assert "options key \\ud800 is not valid Unicode text" in detail["message"]
    assert "lone surrogate" in detail["message"]
    # Nested keys and strings too, whatever the kind (a disabled one is still not built).
    [detail] = invalid_config_details(client, disabled("nonesuch", '"labels": [{"\\udfff": 1}]'))
    assert detail["field"] == "pipeline.customProcessors.later"
    assert "options key labels.0.\\udfff is not valid Unicode text" in detail["message"]
    [detail] = invalid_config_details(client, disabled("gain", '"note": "\\ud800"'))
    assert "options value at note is not valid Unicode text" in detail["message"]

    # Options that are Unicode text still start, disabled and not built as before.
    later = {"name": "later", "kind": "gain", "enabled": False, "options": {"gainDb": 3}}
    started = client.start({"pipeline": {"customProcessors": [later]}})
    stored = service.container.services.repository.get(started["sessionId"])
    assert stored is not None
    assert stored.config["pipeline"]["customProcessors"][0]["options"] == {"gainDb": 3}
    client.close()


def test_a_nested_metadata_key_that_is_not_unicode_text_is_named_readably(start_service):
    # pydantic reads no deeper than metadata's own keys: the free-form check finds the rest,
    # and used to say only "metadata: is not valid UTF-8 JSON".
    service = start_service()
    client = Client(service.url, service.token("mallory"))
    long_key = "k" * 100 + "\\udfff"
    refusals = [
        ('{"a": [{"\\ud800": 1}]}', "key a.0.\\ud800 is not valid Unicode text"),
        (
            '{"device": {"' + long_key + '": 1}}',
            "key device." + "k" * ECHO_LIMIT + "\u2026 is not valid Unicode text",
        ),
        ('{"device": {"name": "\\ud800"}}', "value at device.name is not valid Unicode text"),
    ]
    for metadata, words in refusals:
        [detail] = invalid_config_details(client, '{"metadata": ' + metadata + "}")
        assert detail["field"] == "metadata"
        assert words in detail["message"], detail
        assert "lone surrogate" in detail["message"]

    # update_metadata names it the same way.
    client.start()
    for metadata, words in refusals:
        client.ws.send('{"type": "update_metadata", "metadata": ' + metadata + "}")
        error = client.wait_for("error")
        assert error["code"] == "INVALID_MESSAGE", error
        assert "metadata " + words in error["message"], error
        error["message"].encode("utf-8")
        assert "\ufffd" not in error["message"]
    client.close()


def test_a_deeply_nested_message_gets_an_error_event_and_the_session_keeps_working(
    start_service,
):
    # Valid JSON nested past Python's recursion limit: the parser's RecursionError used
    # to escape the message handling, and the connection dropped without a close frame.
    service = start_service()
    client = Client(service.url, service.token("mallory"))
    session_id = client.start()["sessionId"]
    for nested in ("[" * 100_000 + "]" * 100_000, '{"a": ' * 100_000 + "1" + "}" * 100_000):
        client.ws.send(nested)
        error = client.wait_for("error")
        assert (error["code"], error["fatal"]) == ("INVALID_MESSAGE", False), error
    deep_metadata = '{"a": ' * 5_000 + "1" + "}" * 5_000
    client.ws.send('{"type": "update_metadata", "metadata": ' + deep_metadata + "}")
    assert client.wait_for("error")["code"] == "INVALID_MESSAGE"
    client.send({"type": "ping", "id": "after"})
    assert client.wait_for("pong")["id"] == "after"
    assert service.app.state.service.live_sessions()[0].id == session_id
    client.close()

    # The text-to-speech socket parses its messages the same way.
    with connect(
        service.url.replace("/v1/sessions", "/v1/synthesize/ws"),
        additional_headers={"Authorization": f"Bearer {service.token('mallory')}"},
    ) as synthesis:
        synthesis.send("[" * 100_000 + "]" * 100_000)
        error = json.loads(synthesis.recv(timeout=10))
        assert (error["type"], error["code"]) == ("error", "INVALID_MESSAGE"), error
        synthesis.send(json.dumps({"type": "ping", "id": "after"}))
        assert json.loads(synthesis.recv(timeout=10))["type"] == "pong"


def http_error(url: str, *, token: str | None = None, body: bytes | None = None, **headers):
    """Return the status, headers and JSON body of a refused request."""
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - the test's http URL
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310 - the test's http URL
    return refused.value.code, refused.value.headers, json.loads(refused.value.read())


def test_the_services_http_errors_have_the_platforms_error_shape(start_service):
    # The seed's error body, as every HTTP API of the platform answers it, so a client
    # reports the same fields (and support finds the request) whichever service refused.
    service = start_service()
    refusals = [
        (f"{service.http}/v1/backends", None, None, 401, "UNAUTHENTICATED"),
        (f"{service.http}/v1/sessions/webrtc", None, b"{}", 401, "UNAUTHENTICATED"),
        (f"{service.http}/v1/sessions/webrtc", "forged.token.value", b"{}", 401, None),
        (
            f"{service.http}/v1/sessions/webrtc",
            service.token("mallory"),
            b'{"type": "answer"}',
            400,
            "INVALID_REQUEST",
        ),
    ]
    for url, token, body, status, code in refusals:
        got, headers, error = http_error(url, token=token, body=body)
        assert got == status, (url, error)
        assert set(error) == {"error", "code", "timestamp", "requestId"}, error
        assert code is None or error["code"] == code
        assert error["timestamp"].endswith("Z")
        assert headers["X-Request-Id"] == error["requestId"]
        if status == 401:
            assert headers["WWW-Authenticate"].startswith("Bearer")
    # A request id the caller gives (a gateway's) is the one answered.
    _, headers, error = http_error(f"{service.http}/v1/backends", **{"X-Request-Id": "req-42"})
    assert error["requestId"] == headers["X-Request-Id"] == "req-42"


def test_metadata_merged_over_many_updates_stays_within_the_limit(start_service):
    service = start_service()
    client = Client(service.url, service.token("mallory"))
    session_id = client.start({"metadata": {"device": "test"}})["sessionId"]
    piece = "x" * (8 * 1024)
    client.send({"type": "update_metadata", "metadata": {"a": piece}})
    client.wait_for("metadata.updated")
    for key in ("b", "c", "d"):  # each message is small enough, their sum is not
        client.send({"type": "update_metadata", "metadata": {key: piece}})
        error = client.wait_for("error")
        assert (error["code"], error["fatal"]) == ("INVALID_MESSAGE", False)
        assert "16384" in error["message"]
    client.send({"type": "update_metadata", "metadata": {"a": None, "b": "small"}})
    assert client.wait_for("metadata.updated")["metadata"] == {"device": "test", "b": "small"}
    repository = service.container.services.repository
    # Saved after the confirmation. The record as first stored holds no "a" either: wait
    # for the last update's "b" (waiting for "a" to go read that first record now and then).
    deadline = time.monotonic() + 10
    while (stored := repository.get(session_id)) is None or "b" not in stored.metadata:
        assert time.monotonic() < deadline, stored
        time.sleep(0.05)
    assert stored.metadata == {"device": "test", "b": "small"}

    other = Client(service.url, service.token("mallory"))
    other.send({"type": "start", "config": {"metadata": {"big": "x" * (20 * 1024)}}})
    error = other.wait_for("error")
    assert error["code"] == "INVALID_CONFIG"
    assert [detail["field"] for detail in error["details"]] == ["metadata"]
    client.close()
    other.close()


def test_audio_far_ahead_of_real_time_is_read_at_real_time(start_service):
    # A file replayed at full speed: past the allowance, the server reads no faster than
    # real time, so nothing piles up in the session's queues.
    service = start_service(sessions_max_audio_ahead_seconds=1.0)
    client = Client(service.url, service.token("mallory"))
    client.start({"audio": {"sampleRate": 16_000}})
    began = time.monotonic()
    client.stream(silence(5.0))  # as fast as possible: 5 s of audio, 4 s past the allowance
    client.send({"type": "ping", "id": "after"})
    assert client.wait_for("pong", timeout=30)["id"] == "after"
    assert time.monotonic() - began >= 3.5  # the ping waited behind audio read in real time
    # Audio at real time is read as it comes.
    paced = time.monotonic()
    client.stream(silence(1.0), pace=1.0)
    client.send({"type": "ping", "id": "paced"})
    assert client.wait_for("pong", timeout=30)["id"] == "paced"
    assert time.monotonic() - paced < 3.0  # 1 s of audio, with room for a loaded machine


def test_a_connection_that_never_starts_a_session_is_closed_when_idle(start_service):
    service = start_service(sessions_idle_timeout_seconds=1.0)
    client = Client(service.url, service.token("mallory"))
    client.send({"type": "ping", "id": "p"})
    assert client.wait_for("pong")["id"] == "p"
    client.ws.send(b"\x00\x00" * 160)  # audio is no activity without a session
    assert client.wait_for("error")["code"] == "NOT_STARTED"
    error = client.wait_for("error", timeout=10)
    assert (error["code"], error["fatal"]) == ("IDLE_TIMEOUT", True)
    assert closed_code(client) == 4008


def test_every_error_event_sent_is_counted_once_by_its_code(start_service):
    # voice_session_errors_total counted the pipeline's errors alone: not a refused token,
    # a bad message, a refused start or an unexpected failure (INTERNAL_ERROR).
    service = start_service(
        store_type=FlakyStore, sessions_max_concurrent=1, sessions_idle_timeout_seconds=2.0
    )
    anonymous = Client(service.url, None)
    anonymous.wait_for("error")
    assert closed_code(anonymous) == 4001
    idle = Client(service.url, service.token("pia"))
    idle.ws.send("{not json")
    idle.wait_for("error")
    idle.ws.send(b"\x00\x00" * 160)
    idle.wait_for("error")
    idle.send({"type": "start", "config": {"pipeline": {"latencyTarget": 0}}})
    idle.wait_for("error")
    assert closed_code(idle) == 4008
    store = service.container.store
    assert isinstance(store, FlakyStore)
    store.fail_once = "create"
    failed = Client(service.url, service.token("pia"))
    failed.send({"type": "start"})
    failed.wait_for("error")
    assert closed_code(failed) == 1011
    holder = Client(service.url, service.token("pia"))
    holder.start()
    full = Client(service.url, service.token("quentin"))
    full.send({"type": "start"})
    full.wait_for("error")
    assert closed_code(full) == 1013

    clients = (anonymous, idle, failed, full, holder)
    sent = collections.Counter(
        error["code"] for client in clients for error in client.received.of("error")
    )
    assert set(sent) == {
        "UNAUTHENTICATED",
        "MALFORMED_JSON",
        "NOT_STARTED",
        "INVALID_CONFIG",
        "IDLE_TIMEOUT",
        "INTERNAL_ERROR",
        "SESSION_LIMIT_REACHED",
    }
    assert counted_by_code(service, "voice_session_errors_total") == {
        code: float(count) for code, count in sent.items()
    }
    holder.close()


def test_missing_and_expired_tokens_are_closed_with_4001(start_service):
    service = start_service()
    anonymous = Client(service.url, None)
    assert anonymous.wait_for("error")["code"] == "UNAUTHENTICATED"
    assert closed_code(anonymous) == 4001

    now = int(time.time())
    settings = service.container.settings
    expired_token = jwt.encode(
        {
            "iss": DEV_ISSUER,
            "aud": settings.project,
            "sub": "oscar",
            "iat": now - 7200,
            "exp": now - 3600,
        },
        settings.dev_auth_secret.get_secret_value(),
        algorithm="HS256",
    )
    expired = Client(service.url, expired_token)
    error = expired.wait_for("error")
    assert (error["code"], error["message"]) == ("UNAUTHENTICATED", "Invalid or expired token")
    assert closed_code(expired) == 4001

    forged = Client(service.url, service.token("oscar") + "x")
    assert closed_code(forged) == 4001

    fine = Client(service.url, service.token("oscar"))
    assert fine.start()["resumed"] is False
    fine.close()


def test_a_frame_beyond_the_transport_limit_closes_only_that_connection(start_service):
    service = start_service(sessions_max_message_bytes=128 * 1024)
    client = Client(service.url, service.token("peggy"))
    client.start()
    client.ws.send(b"\x00" * (256 * 1024))
    assert closed_code(client) == 1009
    other = Client(service.url, service.token("peggy"))
    other.start()
    other.send({"type": "ping"})
    other.wait_for("pong")
    other.close()


class StalledClient:
    """A session client that stops reading and keeps sending pings until told to stop."""

    def __init__(self, service, user: str) -> None:
        # Accepted sockets inherit the listening socket's send buffer: a small fixed one
        # (not the kernel's autotuned megabytes) fills after a few hundred pongs.
        for listener in service.server.servers:
            for listening in listener.sockets:
                listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        # A small receive buffer, set before connecting (the window is negotiated then;
        # shrinking it on an open connection makes loopback TCP drop and back off for
        # seconds).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", service.port))
        # max_queue=1: the client library stops reading the socket once one message
        # waits. compression=None: deflated, the repeated pongs shrink to a few bytes each
        # and the buffers take many times longer to fill. ping_interval=None: its
        # keepalive would otherwise give up on the unread pongs and close the connection
        # itself, which is not what is tested.
        self.ws = connect(
            service.url,
            sock=self.sock,
            additional_headers={"Authorization": f"Bearer {service.token(user)}"},
            max_queue=1,
            compression=None,
            ping_interval=None,
            legacy=True,
        )
        self.ws.send(json.dumps({"type": "start"}))
        self._stop = threading.Event()
        self._sender = threading.Thread(target=self._flood, name="stalled-client", daemon=True)

    def _flood(self) -> None:
        # Paced, so the server answers each ping before the next arrives (a burst would
        # fill the outbound queue before its writer ran): the queue fills because the
        # server's sends wait on the full socket. Once the server stops reading, a send
        # blocks on full buffers until the socket is shut or reset.
        ping = json.dumps({"type": "ping", "id": "y" * 64})
        try:
            while not self._stop.is_set():
                self.ws.send(ping)
                time.sleep(0.001)
        except (ConnectionClosed, OSError):
            return

    def flood(self) -> None:
        self._sender.start()

    def stop_sending(self, *, shut: bool = True) -> None:
        """Stop the pings; ``shut`` ends the socket's sending side, which frees a send
        stuck on the full buffers (else the next read frees it)."""
        self._stop.set()
        if shut and self._sender.is_alive():
            with contextlib.suppress(OSError):  # already reset by the server
                self.sock.shutdown(socket.SHUT_WR)
        self._sender.join(timeout=10)
        assert not self._sender.is_alive()


def overflow(service, user: str) -> StalledClient:
    """Start a session for a client that stops reading and wait until the server closes it
    (4009), its connection never holding more unsent than its high-water mark."""
    # The server's own keepalive (uvicorn pings every 20 s, then waits 20 s for the pong)
    # would also close a client that never reads, with 1011, on a very busy machine; what
    # is tested is the overflow's 4009.
    service.server.config.ws_ping_interval = None
    client = StalledClient(service, user)
    backend = service.app.state.service.backend
    started_by = time.monotonic() + 120  # a generous bound: CI machines can be slow
    while not backend.active_session_count:
        assert time.monotonic() < started_by, "the session did not start"
        time.sleep(0.01)
    client.flood()
    closed_by = time.monotonic() + 90
    most_buffered = 0
    while backend.active_session_count or service.tasks_named("session:"):
        assert time.monotonic() < closed_by, (
            "the server kept buffering for a client that never reads"
        )
        for connection in list(service.server.server_state.connections):
            most_buffered = max(most_buffered, connection.transport.get_write_buffer_size())
        time.sleep(0.01)
    metrics = service.container.services.metrics.exposition().decode()
    assert 'voice_sessions_closed_total{code="4009"} 1.0' in metrics
    # Sends waited while the connection's buffer was over its high-water mark (64 KiB):
    # the overflow is the bounded outbound queue's, not an unbounded write buffer's.
    assert 0 < most_buffered <= 64 * 1024 + 1024
    return client


def test_a_client_that_never_reads_is_closed_and_the_server_carries_on(start_service):
    service = start_service(sessions_outbound_buffer_bytes=64 * 1024)
    client = overflow(service, "trent")
    # The close frame cannot get past the unread data: the server aborts the connection
    # rather than hold its socket and buffers for as long as the client lives.
    aborted_by = time.monotonic() + CLOSE_TIMEOUT_SECONDS + 10
    while service.server.server_state.connections:
        assert time.monotonic() < aborted_by, "the server kept the connection open"
        time.sleep(0.05)
    client.stop_sending()
    client.ws.close()
    # Everyone else is served as before.
    other = Client(service.url, service.token("trent"))
    other.start()
    other.send({"type": "ping", "id": "ok"})
    assert other.wait_for("pong")["id"] == "ok"
    other.close()


def test_a_client_that_reads_again_after_its_overflow_gets_the_4009_close(start_service):
    service = start_service(sessions_outbound_buffer_bytes=64 * 1024)
    client = overflow(service, "uma")
    # Reading again lets the close frame, waiting behind the unread pongs, through.
    code = None
    try:
        while True:
            client.ws.recv(timeout=CLOSE_TIMEOUT_SECONDS)
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd is not None else None
    client.stop_sending(shut=False)
    assert code == 4009


def test_a_client_that_never_answers_the_close_is_cut_off_after_the_close_timeout(
    start_service,
):
    service = start_service()
    # A raw client: it reads everything but never sends the close frame the protocol asks
    # of it. uvicorn alone would wait 10 s for it, then close gracefully.
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=30)
    sock.sendall(
        b"GET /v1/sessions HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{service.port}\r\n".encode()
        + b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    received = b""
    started = time.monotonic()
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(4096):
            received += chunk
    waited = time.monotonic() - started
    sock.close()
    assert b" 101 " in received.split(b"\r\n", 1)[0]
    # The server's close frame (0x88, unmasked, its code after the length byte; the error
    # event before it is ASCII) said 4001 (no token); the connection ended once the close
    # timeout passed without the client's answer.
    close = received.rindex(b"\x88")
    assert int.from_bytes(received[close + 2 : close + 4], "big") == 4001
    assert CLOSE_TIMEOUT_SECONDS - 1 < waited < CLOSE_TIMEOUT_SECONDS + 3
