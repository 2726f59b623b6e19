"""How a request names its lexicons: ``id`` (the latest version) or ``id@version``.

Apart from the lexicons' models so that a synthesis request's model, which takes
``lexiconIds``, does not create every lexicon model in a cold instance that speaks.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from shared.errors import InvalidRequestError

MAX_LEXICONS_PER_REQUEST = 10

REFERENCE_PATTERN = r"^([A-Za-z0-9_-]{1,64})(?:@([1-9][0-9]{0,5}))?$"
_REFERENCE = re.compile(REFERENCE_PATTERN)
LexiconReference = Annotated[
    str,
    Field(
        pattern=REFERENCE_PATTERN,
        description="A lexicon id (its latest version) or id@version (that version)",
        examples=["ede97f4ec7c447e69b27b32972190978", "ede97f4ec7c447e69b27b32972190978@3"],
    ),
]
LexiconIds = Annotated[
    list[LexiconReference],
    Field(
        max_length=MAX_LEXICONS_PER_REQUEST,
        description="Your pronunciation lexicons to apply, in order (on a grapheme in "
        "several, the first wins); each an id or id@version",
    ),
]


def parse_reference(reference: str) -> tuple[str, int | None]:
    """Return the lexicon id and pinned version of ``id`` or ``id@version``.

    Raises InvalidRequestError for anything else.
    """
    match = _REFERENCE.match(reference)
    if match is None:
        raise InvalidRequestError(f"{reference!r} is not a lexicon id (or id@version)")
    return match.group(1), int(match.group(2)) if match.group(2) else None
