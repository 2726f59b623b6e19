"""Pre-call voice cloning: caller mappings, the clone cache, call logs and clone events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.capability import Capability, Ports

if TYPE_CHECKING:
    from shared.precall.deps import PrecallDeps


def _build(ports: Ports) -> PrecallDeps:
    from shared.precall.deps import PrecallDeps  # noqa: PLC0415 - off cold starts

    return PrecallDeps.from_ports(ports)


def _purge(deps: PrecallDeps, user_id: str) -> int:
    from shared.precall.purge import purge_account  # noqa: PLC0415 - see _build

    return purge_account(deps, user_id)


CAPABILITY: Capability[PrecallDeps] = Capability(
    name="precall",
    build=_build,
    tasks_module="shared.precall.tasks",
    purges={"precall": _purge},
)
