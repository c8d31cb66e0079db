"""Which model reads a comment: the Chinese student, or the English companion.

Why route at all: the student's base (bge-small-zh) has a Chinese vocabulary that cuts English
words into pieces, and it read English comments far worse than Chinese ones; an English-native base
reads them better (docs/sentiment.md).  The rule is on the *normalised* text (what the cache keys and
the models see): a comment with at least one ASCII letter and no letter of a non-Latin script goes to
the English model.  Everything else stays with the student, which was trained on all of it: Chinese,
mixed Chinese-English, Japanese and Korean (kana, hangul, jamo), every other script (Cyrillic, Thai,
Arabic: neither model was taught them, and the student's wider vocabulary covers more of them), and
text with no ASCII letter at all (digit slang such as ``666``, punctuation).  Latin letters with
accents (``café``) count as Latin.  Emoji are words after normalising (``🔥`` -> ``fire``), so an
emoji-only comment, or ``666 🔥``, reads as English; so does pinyin-initial slang written without a
Chinese character (``yyds``, ``xswl``): the English model is trained on every training comment that
routes to it, such ones included.  A comment's route depends on its own text only, so its score still
does not depend on its batch.
"""

from __future__ import annotations

import re

_ASCII_LETTER = re.compile(r"[A-Za-z]")
#: A letter (any word character that is not a digit or ``_``) outside Basic Latin, Latin-1, Latin
#: Extended-A/B and Latin Extended Additional: Han (every extension), kana, hangul and jamo, bopomofo,
#: ``々`` / ``〆`` / ``〇``, Cyrillic, Greek, Thai, Arabic, ...
_OTHER_SCRIPT_LETTER = re.compile(r"[^\W\d_A-Za-z\u00C0-\u024F\u1E00-\u1EFF]")


def reads_english(normalized: str) -> bool:
    """True when the English companion model should score this (normalised) comment."""
    return _ASCII_LETTER.search(normalized) is not None and _OTHER_SCRIPT_LETTER.search(normalized) is None
