"""Voice samples: uploaded recordings, their analysis and speaker embeddings."""

from __future__ import annotations

from shared.capability import Capability, no_dependencies, purge_owned_documents

CAPABILITY: Capability[None] = Capability(
    name="samples",
    build=no_dependencies,
    purges={"voice_samples": purge_owned_documents("voice_samples")},
)
