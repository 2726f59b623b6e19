"""Real-time voice sessions: backends, pipelines and the sessions they run."""

from __future__ import annotations

from shared.capability import Capability, no_dependencies

CAPABILITY: Capability[None] = Capability(name="sessions", build=no_dependencies)
