"""IPA to eSpeak NG's phoneme mnemonics, for pronunciation rules spoken by eSpeak.

eSpeak reads phonemes written between ``[[`` and ``]]`` in its own ASCII mnemonics (close
to Kirshenbaum's ASCII-IPA), not in IPA. ``to_espeak`` converts a rule's IPA, symbol by
symbol, longest symbol first (so ``tʃ`` is one affricate, ``aɪ`` one diphthong), and names
the first symbol it does not know, so a lexicon with an unknown symbol is refused when it
is saved rather than mispronounced later. The table covers the English phoneme inventory
and the common vowels and consonants of the major European languages; stress and length
marks map to eSpeak's ``'``, ``,`` and ``:``.
"""

from __future__ import annotations

from shared.errors import InvalidRequestError

# IPA symbol (or sequence) -> eSpeak mnemonic. Multi-character entries win over their parts.
_TABLE: dict[str, str] = {
    # Affricates and diphthongs first (longest match wins anyway).
    "tʃ": "tS",
    "dʒ": "dZ",
    "ts": "ts",
    "dz": "dz",
    "aɪ": "aI",
    "aʊ": "aU",
    "ɔɪ": "OI",
    "eɪ": "eI",
    "oʊ": "oU",
    "əʊ": "@U",
    "ɪə": "i@",
    "eə": "e@",
    "ʊə": "U@",
    "ɝ": "3:",
    "ɚ": "3",
    # Vowels.
    "i": "i",
    "ɪ": "I",
    "e": "e",
    "ɛ": "E",
    "æ": "a",
    "a": "a",
    "ɑ": "A",
    "ɒ": "0",
    "ɔ": "O",
    "o": "o",
    "ʊ": "U",
    "u": "u",
    "ʌ": "V",
    "ə": "@",
    "ɜ": "3",
    "ɐ": "a#",
    "y": "y",
    "ø": "Y",
    "œ": "W",
    "ɨ": "i#",
    "ʉ": "u-",
    "ɯ": "u-",
    # Consonants.
    "p": "p",
    "b": "b",
    "t": "t",
    "d": "d",
    "k": "k",
    "g": "g",
    "ɡ": "g",
    "ʔ": "?",
    "f": "f",
    "v": "v",
    "θ": "T",
    "ð": "D",
    "s": "s",
    "z": "z",
    "ʃ": "S",
    "ʒ": "Z",
    "ç": "C",
    "x": "x",
    "ɣ": "Q",
    "χ": "X",
    "h": "h",
    "ɦ": "h",
    "m": "m",
    "n": "n",
    "ŋ": "N",
    "ɲ": "n^",
    "l": "l",
    "ɫ": "l",
    "ʎ": "l^",
    "r": "r",
    "ɹ": "r",
    "ɾ": "*",
    "ʁ": "r",
    "j": "j",
    "w": "w",
    "ʍ": "W",
    # Suprasegmentals.
    "ˈ": "'",
    "ˌ": ",",
    "ː": ":",
    "ˑ": "",
    ".": "",
}
_LONGEST = max(len(symbol) for symbol in _TABLE)
_IGNORED = frozenset(" \u200b")


class UnknownIpaSymbolError(InvalidRequestError):
    """A rule's IPA holds a symbol no table entry converts."""

    code = "UNKNOWN_IPA_SYMBOL"


def to_espeak(ipa: str) -> str:
    """Return ``ipa`` in eSpeak's phoneme mnemonics.

    Raises UnknownIpaSymbolError naming the first symbol it cannot convert.
    """
    out: list[str] = []
    position = 0
    while position < len(ipa):
        if ipa[position] in _IGNORED:
            position += 1
            continue
        for length in range(min(_LONGEST, len(ipa) - position), 0, -1):
            symbol = ipa[position : position + length]
            if symbol in _TABLE:
                out.append(_TABLE[symbol])
                position += length
                break
        else:
            raise UnknownIpaSymbolError(
                f"IPA symbol {ipa[position]!r} (U+{ord(ipa[position]):04X}) in {ipa!r} is not "
                "one eSpeak can be given"
            )
    if not out:
        raise UnknownIpaSymbolError(f"{ipa!r} holds no phoneme")
    return "".join(out)
