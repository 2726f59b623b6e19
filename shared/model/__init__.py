"""The building blocks every capability's entities are made of.

Entities serialize with camelCase field names (the API convention) and accept camelCase or
snake_case on input; request models forbid unknown fields, so a typo in a client's body or
query is a 400 rather than silently ignored. The constrained number types declare each rule
once (an 8 Hz sample rate, a quality of 1.2, a negative duration or NaN are refused
everywhere alike); language tags are normalised to canonical BCP-47 casing before they are
stored or compared; and each entity's state machine is a table of legal moves enforced by
``check_transition``, whose transition methods return a new, fully validated instance
(``with_changes``) so a refused transition never leaves an entity half-changed. A refused
input's problems are named alike everywhere (``validation_problems``): field paths whose
keys, the caller's own text, are cut and a lone surrogate or NUL shown by its JSON escape.

Import every name from here: the private modules hold them by responsibility (stored
entities, request models, refused input and free-form JSON, language tags).
"""

from __future__ import annotations

from shared.model._entities import (
    DEFAULT_SAMPLE_RATE,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    BodyDatetime,
    DomainModel,
    ModelT,
    NonNegativeCount,
    PositiveSeconds,
    QueryDatetime,
    RequiredId,
    SampleRate,
    Seconds,
    StatusT,
    TransitionTable,
    UnitScore,
    UtcDatetime,
    check_transition,
    is_transition_allowed,
    new_id,
    utcnow,
    with_changes,
)
from shared.model._languages import LanguageTag, equivalent_languages, normalize_language_tag
from shared.model._requests import RequestModel
from shared.model._validation import (
    MAX_FREE_FORM_BYTES,
    MAX_FREE_FORM_DEPTH,
    MAX_FREE_FORM_ITEMS,
    FreeForm,
    StoredFreeForm,
    check_free_form,
    check_unicode_text,
    is_unspoken_control,
    validation_problems,
)

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "MAX_FREE_FORM_BYTES",
    "MAX_FREE_FORM_DEPTH",
    "MAX_FREE_FORM_ITEMS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "BodyDatetime",
    "DomainModel",
    "FreeForm",
    "LanguageTag",
    "ModelT",
    "NonNegativeCount",
    "PositiveSeconds",
    "QueryDatetime",
    "RequestModel",
    "RequiredId",
    "SampleRate",
    "Seconds",
    "StatusT",
    "StoredFreeForm",
    "TransitionTable",
    "UnitScore",
    "UtcDatetime",
    "check_free_form",
    "check_transition",
    "check_unicode_text",
    "equivalent_languages",
    "is_transition_allowed",
    "is_unspoken_control",
    "new_id",
    "normalize_language_tag",
    "utcnow",
    "validation_problems",
    "with_changes",
]
