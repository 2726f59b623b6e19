"""A capability made only for tests: one package and its declaration, as a new one would be."""

from __future__ import annotations

from dataclasses import dataclass

from shared.capability import Capability, Ports, delete_owned
from shared.store.base import DocumentStore


@dataclass(frozen=True)
class EchoDeps:
    """The one port the echo capability uses."""

    store: DocumentStore


def build(ports: Ports) -> EchoDeps:
    """Return the echo capability's dependencies."""
    return EchoDeps(ports.store)


def purge(deps: EchoDeps, user_id: str) -> int:
    """Delete the user's echoes."""
    return delete_owned(deps.store, "echoes", user_id)


CAPABILITY: Capability[EchoDeps] = Capability(
    name="echo",
    build=build,
    tasks_module="tests.support.echo_capability.tasks",
    purges={"echoes": purge},
)
