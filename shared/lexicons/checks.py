"""Checking a lexicon's rules before they are saved.

A lexicon holds at most ``MAX_RULES`` rules, its graphemes are unique (case-insensitive
ones as its language cases them, ``fold_case``), every phoneme is IPA that eSpeak takes,
no grapheme or alias holds a control character, and no alias leads back to its own
grapheme through other rules (a loop an engine that re-applies rules would never leave).
An alias names a grapheme where the rule would apply in it (``Matcher``: whole words, the
signs written on a word of it), so saying "C" as "C++" is no loop, while saying "C++" as
"the C++ way" is one.
"""

from __future__ import annotations

from shared.errors import InvalidRequestError
from shared.lexicons.ipa import UnknownIpaSymbolError, to_espeak
from shared.lexicons.matching import Matcher
from shared.lexicons.model import MAX_RULES, Casing, LexiconRule, casing_of, fold_case
from shared.model import is_unspoken_control


def check_rules(rules: list[LexiconRule], language: str = "") -> None:
    """Raise InvalidRequestError naming the first rule that cannot be used.

    Checks the count, duplicate graphemes (case-insensitive ones as ``language`` cases
    them), the IPA of every phoneme rule (UnknownIpaSymbolError) and alias loops.
    """
    if len(rules) > MAX_RULES:
        raise InvalidRequestError(f"A lexicon holds at most {MAX_RULES} rules")
    casing = casing_of(language)
    seen: set[tuple[str, bool]] = set()
    for rule in rules:
        key = (
            rule.grapheme if rule.case_sensitive else fold_case(rule.grapheme, casing),
            rule.case_sensitive,
        )
        if key in seen:
            raise InvalidRequestError(f"Rule {rule.grapheme!r} appears twice")
        seen.add(key)
        for name, value in (("grapheme", rule.grapheme), ("alias", rule.alias)):
            if value is not None and any(map(is_unspoken_control, value)):
                raise InvalidRequestError(
                    f"Rule {rule.grapheme!r}: its {name} holds a control character"
                )
        if rule.phoneme is not None:
            try:
                to_espeak(rule.phoneme)
            except UnknownIpaSymbolError as exc:
                raise UnknownIpaSymbolError(f"Rule {rule.grapheme!r}: {exc.message}") from None
    _check_loops(rules, casing)


def _check_loops(rules: list[LexiconRule], casing: Casing) -> None:
    """Raise InvalidRequestError naming a rule whose alias leads back to it."""
    matcher = Matcher([(rule, casing) for rule in rules])
    number = {id(rule): index for index, rule in enumerate(rules)}
    # Each rule with an alias, and the rules that would apply in its alias.
    following = {
        index: [number[id(match.rule)] for match in matcher.matches(rule.alias)]
        for index, rule in enumerate(rules)
        if rule.alias is not None
    }
    # One depth-first walk over the rules: each is entered once, so aliases that share
    # words (many paths, no loop) are checked in linear time, not once per path.
    finished: set[int] = set()
    for start, first_rules in following.items():
        if start in finished:
            continue
        trail = [start]
        pending = [iter(first_rules)]
        while pending:
            current = next(pending[-1], None)
            if current is None:
                finished.add(trail.pop())
                pending.pop()
            elif current in trail:
                loop = [*trail[trail.index(current) :], current]
                chain = " -> ".join(rules[index].grapheme for index in loop)
                raise InvalidRequestError(
                    f"Rule {rules[current].grapheme!r} loops through its aliases ({chain})"
                )
            elif current in following and current not in finished:
                trail.append(current)
                pending.append(iter(following[current]))
