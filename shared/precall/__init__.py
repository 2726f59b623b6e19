"""Pre-call voice cloning: caller mappings, the clone cache, call logs and clone events."""

from __future__ import annotations

from shared.capability import Capability, no_dependencies

CAPABILITY: Capability[None] = Capability(name="precall", build=no_dependencies)
