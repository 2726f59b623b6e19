"""What operations rely on: probes on the right paths, stored sessions that expire."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from shared.sessions.model import VoiceSession
from shared.sessions.repository import COLLECTION, EXPIRES_AT, SessionRepository
from shared.store.sqlite import SqliteDocumentStore

ROOT = Path(__file__).resolve().parents[2]


def test_a_stored_session_expires_a_resume_window_after_its_last_activity(tmp_path):
    store = SqliteDocumentStore(tmp_path / "store.sqlite3")
    try:
        repository = SessionRepository(store, resume_window=timedelta(seconds=300))
        session = VoiceSession(backend_id="native-1", user_id="ivy", connection_id="c1")
        repository.create(session)
        document = store.get(COLLECTION, session.id)
        assert document is not None
        assert document.data[EXPIRES_AT] == session.last_activity + timedelta(seconds=300)
        assert repository.get(session.id) == session  # the field is the store's, not the model's
    finally:
        store.close()


def test_cloud_run_waits_for_readyz_and_firestore_expires_stored_sessions():
    run = (ROOT / "infra" / "run.tf").read_text()
    startup = re.search(r"startup_probe \{(.*?)\n      \}", run, re.DOTALL)
    assert startup is not None
    assert re.search(r'http_get \{\s*path = "/readyz"', startup.group(1))
    firestore = (ROOT / "infra" / "firestore.tf").read_text()
    ttl = re.search(r"ttl_collections = toset\(\[(.*?)\]\)", firestore)
    assert ttl is not None
    assert f'"{COLLECTION}"' in ttl.group(1)
    assert 'field      = "expires_at"' in firestore
