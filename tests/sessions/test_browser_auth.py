"""Browsers cannot set headers on a WebSocket: the token comes as a subprotocol instead."""

from __future__ import annotations

from websockets.exceptions import ConnectionClosed

from tests.sessions.support import Client, silence, speech

BROWSER_PROTOCOLS = ["voice-session"]


def closed_code(client: Client) -> int | None:
    try:
        while True:
            client.ws.recv(timeout=10)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def test_a_token_offered_as_a_subprotocol_opens_the_session(start_service):
    service = start_service()
    token = service.token("bianca")
    client = Client(service.url, None, subprotocols=[*BROWSER_PROTOCOLS, f"bearer.{token}"])
    # The server selects the protocol name, never the one carrying the token.
    assert client.ws.subprotocol == "voice-session"
    started = client.start({"audio": {"sampleRate": 16000}})
    client.stream(silence(0.3) + speech("Hello.") + silence(1.0))
    assert "hello" in client.wait_for("transcript.final")["text"].lower()
    stored = service.container.services.repository.get(started["sessionId"])
    assert stored is not None
    assert stored.user_id == "bianca"
    client.close()


def test_a_bad_subprotocol_token_is_closed_with_4001(start_service):
    service = start_service()
    forged = Client(
        service.url, None, subprotocols=[*BROWSER_PROTOCOLS, f"bearer.{service.token('x')}x"]
    )
    assert forged.wait_for("error")["code"] == "UNAUTHENTICATED"
    assert closed_code(forged) == 4001
    empty = Client(service.url, None, subprotocols=[*BROWSER_PROTOCOLS, "bearer."])
    assert closed_code(empty) == 4001
    # Without the token's protocol, the header is required as before.
    anonymous = Client(service.url, None, subprotocols=BROWSER_PROTOCOLS)
    assert closed_code(anonymous) == 4001


def test_the_authorization_header_wins_over_a_subprotocol_token(start_service):
    service = start_service()
    client = Client(
        service.url,
        service.token("header-user"),
        subprotocols=[*BROWSER_PROTOCOLS, f"bearer.{service.token('protocol-user')}"],
    )
    started = client.start()
    stored = service.container.services.repository.get(started["sessionId"])
    assert stored is not None
    assert stored.user_id == "header-user"
    client.close()
