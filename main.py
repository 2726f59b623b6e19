"""Entry points for the Cloud Functions runtime, which loads ``main.py`` from the source root.

Each deployed function names one of these as its entry point (see ``functions.FUNCTIONS``).
The runtime executes this file once per app it builds, so the error handler registered
here keeps even the framework's own answers (an unroutable path) in the platform's shape.
"""

import functions_framework
from werkzeug.exceptions import HTTPException

from functions.console import console
from functions.files import files
from functions.lexicons import lexicons
from functions.openai_speech import openai_speech
from functions.openapi import openapi
from functions.precall import precall
from functions.sample_uploaded import sample_uploaded
from functions.samples import samples
from functions.sync_voices import sync_voices
from functions.synthesis import synthesis
from functions.tasks import tasks
from functions.training_completed import training_completed
from functions.users import users
from functions.voice_model_activation import voice_model_activation
from functions.voice_models import voice_models
from functions.voices import voices
from shared.http import http_exception_response

functions_framework.errorhandler(HTTPException)(http_exception_response)

__all__ = [
    "console",
    "files",
    "lexicons",
    "openai_speech",
    "openapi",
    "precall",
    "sample_uploaded",
    "samples",
    "sync_voices",
    "synthesis",
    "tasks",
    "training_completed",
    "users",
    "voice_model_activation",
    "voice_models",
    "voices",
]
