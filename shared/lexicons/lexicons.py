"""Managing a user's pronunciation lexicons: create, read, list, change (a new version), delete.

Rules come as JSON or as a W3C PLS document and are checked before anything is stored
(``check_rules``, as the lexicon's language cases them), so a bad lexicon is a 400 naming
the rule and nothing half-applied. A PLS document's ``xml:lang`` is the lexicon's language:
a ``language`` given with it must name the same one (in any case, or another code of it),
or the request is a 400 naming both. A change to the rules, the name or the language makes
a new version; earlier versions stay readable for requests that pinned them. Users reach
only their own lexicons; another user's is "not found".
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from shared.errors import InvalidRequestError, NotFoundError, echoed
from shared.lexicons.apply import Pronouncer
from shared.lexicons.checks import check_rules
from shared.lexicons.model import Lexicon, LexiconCreate, LexiconRule, LexiconUpdate
from shared.lexicons.pls import parse_pls
from shared.lexicons.references import MAX_LEXICONS_PER_REQUEST, parse_reference
from shared.lexicons.repository import LexiconRepository
from shared.model import equivalent_languages, utcnow
from shared.store.base import DocumentStore, Transaction


class LexiconNotFoundError(NotFoundError):
    """No such lexicon (or version) of the caller."""

    code = "LEXICON_NOT_FOUND"


def create_lexicon(store: DocumentStore, user_id: str, request: LexiconCreate) -> Lexicon:
    """Create a lexicon of ``user_id``; return it (version 1).

    Raises InvalidRequestError naming the first unusable rule, or a ``language`` that the
    PLS document's ``xml:lang`` disagrees with.
    """
    language, rules = _language_and_rules(request.rules, request.pls, request.language)
    check_rules(rules, language or "")
    lexicon = Lexicon(user_id=user_id, name=request.name, language=language or "", rules=rules)
    LexiconRepository(store).add(lexicon)
    return lexicon


def get_lexicon(
    store: DocumentStore, user_id: str, lexicon_id: str, version: int | None = None
) -> Lexicon:
    """Return the caller's lexicon (the latest version, or ``version``).

    Raises LexiconNotFoundError.
    """
    repository = LexiconRepository(store)
    found = (
        repository.latest(lexicon_id)
        if version is None
        else repository.version(lexicon_id, version)
    )
    if found is None or found.user_id != user_id:
        suffix = f"@{version}" if version is not None else ""
        raise LexiconNotFoundError(f"Lexicon not found: {echoed(lexicon_id)}{suffix}")
    return found


def list_lexicons(
    store: DocumentStore, user_id: str, *, limit: int, cursor: str | None
) -> tuple[list[Lexicon], str | None]:
    """Return one page of the caller's lexicons and the next page's cursor."""
    return LexiconRepository(store).page(user_id, limit=limit, cursor=cursor)


def update_lexicon(
    store: DocumentStore, user_id: str, lexicon_id: str, request: LexiconUpdate
) -> Lexicon:
    """Apply the change as a new version; return it (the current one when nothing changes).

    Raises LexiconNotFoundError or InvalidRequestError (a rule that cannot be used, or a
    ``language`` that the PLS document's ``xml:lang`` disagrees with).
    """
    language, rules = request.language, None
    if request.rules is not None or request.pls is not None:
        language, rules = _language_and_rules(request.rules, request.pls, request.language)

    def change(tx: Transaction) -> Lexicon:
        current = LexiconRepository.tx_latest(tx, lexicon_id)
        if current is None or current.user_id != user_id:
            raise LexiconNotFoundError(f"Lexicon not found: {echoed(lexicon_id)}")
        name = request.name or current.name
        new_language = language or current.language
        new_rules = rules if rules is not None else current.rules
        if (name, new_language, new_rules) == (current.name, current.language, current.rules):
            # A version is a change: the same lexicon again keeps the cache's audio of it.
            return current
        if rules is not None or new_language != current.language:
            # Another language may case two graphemes alike (Turkish İ and i).
            check_rules(new_rules, new_language)
        updated = current.model_copy(
            update={
                "name": name,
                "language": new_language,
                "rules": new_rules,
                "version": current.version + 1,
                "updated_at": utcnow(),
            }
        )
        LexiconRepository.tx_save_version(tx, updated)
        return updated

    return store.run_transaction(change)


def delete_lexicon(store: DocumentStore, user_id: str, lexicon_id: str) -> None:
    """Delete the caller's lexicon and its versions; raise LexiconNotFoundError."""
    get_lexicon(store, user_id, lexicon_id)
    LexiconRepository(store).remove(lexicon_id)


def lexicons_for_request(
    store: DocumentStore, user_id: str, references: Sequence[str]
) -> list[Lexicon]:
    """Return the lexicons a synthesis request names (``id`` or ``id@version``), in order.

    Raises InvalidRequestError (malformed or too many) or LexiconNotFoundError.
    """
    if len(references) > MAX_LEXICONS_PER_REQUEST:
        raise InvalidRequestError(f"A request uses at most {MAX_LEXICONS_PER_REQUEST} lexicons")
    found = []
    for reference in references:
        lexicon_id, version = parse_reference(reference)
        found.append(get_lexicon(store, user_id, lexicon_id, version))
    return found


@dataclass(frozen=True)
class LexiconSelection:
    """The lexicons a synthesis applies: each one's exact version, and their rules compiled
    (on a grapheme in several, the first lexicon named wins)."""

    references: tuple[str, ...]
    pronouncer: Pronouncer

    @property
    def ids(self) -> list[str]:
        """Return ``id@version`` of each lexicon, in the order they apply."""
        return list(self.references)


def select_lexicons(
    store: DocumentStore, user_id: str, references: Sequence[str] | None
) -> LexiconSelection | None:
    """Return the caller's lexicons that ``references`` name, each pinned to the version
    read now (so a job renders later with exactly these), or None when none are named.

    Raises InvalidRequestError (malformed or too many) or LexiconNotFoundError (unknown,
    deleted, or another user's: never told apart).
    """
    return select_lexicon_sets(store, user_id, [references])[0]


def select_lexicon_sets(
    store: DocumentStore, user_id: str, groups: Sequence[Sequence[str] | None]
) -> list[LexiconSelection | None]:
    """Return a ``select_lexicons`` answer for each group of references (a dialogue's
    turns), reading each lexicon once: an unpinned id is the same version in every group.

    Raises as ``select_lexicons``; more than ``MAX_LEXICONS_PER_REQUEST`` lexicons over
    all groups are refused.
    """
    distinct = list(dict.fromkeys(ref for group in groups for ref in group or ()))
    by_reference = dict(zip(distinct, lexicons_for_request(store, user_id, distinct), strict=True))
    selections: list[LexiconSelection | None] = []
    for group in groups:
        if not group:
            selections.append(None)
            continue
        found = [by_reference[reference] for reference in dict.fromkeys(group)]
        pinned = tuple(dict.fromkeys(f"{lexicon.id}@{lexicon.version}" for lexicon in found))
        selections.append(LexiconSelection(pinned, _pronouncer(pinned, found)))
    return selections


# A version's rules never change, so their compiled form (a 1,000-rule alternation takes
# about 20 ms to compile) is kept per process for the versions used lately.
_COMPILED_SETS = 256
_compiled: OrderedDict[tuple[str, ...], Pronouncer] = OrderedDict()
_compiled_lock = threading.Lock()


def _pronouncer(pinned: tuple[str, ...], lexicons: Sequence[Lexicon]) -> Pronouncer:
    with _compiled_lock:
        found = _compiled.get(pinned)
        if found is not None:
            _compiled.move_to_end(pinned)
            return found
    compiled = Pronouncer.of_lexicons(lexicons)
    with _compiled_lock:
        _compiled[pinned] = compiled
        while len(_compiled) > _COMPILED_SETS:
            _compiled.popitem(last=False)
    return compiled


def _language_and_rules(
    rules: list[LexiconRule] | None, pls: str | None, language: str | None
) -> tuple[str | None, list[LexiconRule]]:
    """Return the lexicon's language (None when not given) and rules, unchecked.

    Raises InvalidRequestError: a PLS document that cannot be read, or whose ``xml:lang``
    names another language than ``language``.
    """
    if pls is None:
        return language, rules or []
    pls_language, parsed = parse_pls(pls)
    if language is not None and not _same_language(language, pls_language):
        raise InvalidRequestError(
            f"language {language!r} is not the PLS document's xml:lang {pls_language!r}; "
            "give the same language in both, or either one alone"
        )
    return language or pls_language, parsed


def _same_language(first: str, second: str) -> bool:
    """Return whether two canonical language tags name one language (zh-CN is cmn-CN)."""

    def codes(tag: str) -> set[str]:
        return {code.casefold() for code in (tag, *equivalent_languages(tag))}

    return first.casefold() in codes(second) or second.casefold() in codes(first)
