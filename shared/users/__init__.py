"""User accounts: registration, profile, storage used, and deletion of everything a user owns."""

from __future__ import annotations

from shared.capability import Capability, no_dependencies

CAPABILITY: Capability[None] = Capability(name="users", build=no_dependencies)
