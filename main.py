"""Entry points for the Cloud Functions runtime, which loads ``main.py`` from the source root.

Each deployed function names one of these as its entry point (see ``functions.FUNCTIONS``).
"""

from functions.files import files
from functions.openai_speech import openai_speech
from functions.openapi import openapi
from functions.sync_voices import sync_voices
from functions.synthesis import synthesis
from functions.tasks import tasks
from functions.users import users
from functions.voice_model_activation import voice_model_activation
from functions.voice_models import voice_models
from functions.voices import voices

__all__ = [
    "files",
    "openai_speech",
    "openapi",
    "sync_voices",
    "synthesis",
    "tasks",
    "users",
    "voice_model_activation",
    "voice_models",
    "voices",
]
