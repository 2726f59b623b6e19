"""Real-time voice sessions: backends, pipelines and the sessions they run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.capability import Capability, Ports, delete_owned

if TYPE_CHECKING:
    from shared.sessions.deps import SessionDeps


def _build(ports: Ports) -> SessionDeps:
    from shared.sessions.deps import SessionDeps  # noqa: PLC0415 - off cold starts

    return SessionDeps.from_ports(ports)


def _purge(deps: SessionDeps, user_id: str) -> int:
    return delete_owned(deps.store, "voice_sessions", user_id)


CAPABILITY: Capability[SessionDeps] = Capability(
    name="sessions", build=_build, purges={"voice_sessions": _purge}
)
