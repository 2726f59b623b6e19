"""A sentence whose words carry signs, and its words as word timestamps cut them.

Every provider's timing path is checked on it (``shared.audio.timing.tokenize_words``:
the signs written on a word are of it, the punctuation around it is not).
"""

SIGNED_TEXT = "It costs $5, that is 50% off C++ books."

SIGNED_WORDS = [
    ("It", 0, 2),
    ("costs", 3, 8),
    ("$5", 9, 11),
    ("that", 13, 17),
    ("is", 18, 20),
    ("50%", 21, 24),
    ("off", 25, 28),
    ("C++", 29, 32),
    ("books", 33, 38),
]
"""(text, first character, character after the last) of each word of ``SIGNED_TEXT``."""
