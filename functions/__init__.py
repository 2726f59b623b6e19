"""Cloud Function entry points, one module each, and the table of what is deployed.

``FUNCTIONS`` is the single list of deployed functions: the local gateway mounts each at
its production path prefixes, ``main.py`` resolves each entry point by name for the Cloud
Functions runtime (importing only that function's module), and a test checks that
Terraform deploys exactly these.
"""

from __future__ import annotations

from typing import Literal, NamedTuple


class FunctionSpec(NamedTuple):
    """One deployed function: its entry point and the URL paths it serves."""

    name: str
    module: str
    prefixes: tuple[str, ...] = ()
    trigger: Literal["http", "storage"] = "http"
    # Storage triggers: the Settings field naming the bucket whose finalize events it gets.
    bucket_setting: str | None = None

    @property
    def entry_point(self) -> str:
        """Return the name ``main.py`` exports (function names may hold dashes)."""
        return self.name.replace("-", "_")


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(name="users", module="functions.users", prefixes=("/users",)),
    FunctionSpec(name="openapi", module="functions.openapi", prefixes=("/openapi.json",)),
    FunctionSpec(name="tasks", module="functions.tasks", prefixes=("/tasks", "/scheduler")),
    FunctionSpec(name="voices", module="functions.voices", prefixes=("/voices",)),
    FunctionSpec(name="sync-voices", module="functions.sync_voices", prefixes=("/voices/sync",)),
    # Voice models (seed 001). "*" in a prefix matches one path segment (a model or user id).
    FunctionSpec(name="voice-models", module="functions.voice_models", prefixes=("/voice-models",)),
    FunctionSpec(
        name="voice-model-activation",
        module="functions.voice_model_activation",
        prefixes=(
            "/voice-models/*/activate",
            "/voice-models/*/deactivate",
            "/voice-models/user/*/active",
        ),
    ),
    # Synthesis (seed 002, dialogue from seed 000), audio files, OpenAI-compatible speech.
    FunctionSpec(
        name="synthesis", module="functions.synthesis", prefixes=("/synthesize", "/synthesis")
    ),
    FunctionSpec(name="files", module="functions.files", prefixes=("/files",)),
    FunctionSpec(name="openai-speech", module="functions.openai_speech", prefixes=("/v1/audio",)),
    # Voice samples and training (seed 002, issue 16): the HTTPS API (training is a
    # /voice-models route, but it starts from samples), the signed uploads' storage events,
    # and the storage-triggered completion of training.
    FunctionSpec(
        name="samples", module="functions.samples", prefixes=("/samples", "/voice-models/train")
    ),
    FunctionSpec(
        name="sample-uploaded",
        module="functions.sample_uploaded",
        trigger="storage",
        bucket_setting="samples_bucket",
    ),
    FunctionSpec(
        name="training-completed",
        module="functions.training_completed",
        trigger="storage",
        bucket_setting="models_bucket",
    ),
    # Pre-call voice cloning (seed 003): caller mappings, the telephony webhook, analytics.
    FunctionSpec(name="precall", module="functions.precall", prefixes=("/precall",)),
    # Pronunciation lexicons that synthesis requests name in lexiconIds.
    FunctionSpec(name="lexicons", module="functions.lexicons", prefixes=("/lexicons",)),
    # The developer console: a web page of static files calling the API above.
    FunctionSpec(name="console", module="functions.console", prefixes=("/console",)),
)
