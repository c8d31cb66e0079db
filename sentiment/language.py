"""Which model reads a comment: the Chinese student, or the English companion.

Why route at all: the student's base (bge-small-zh) has a Chinese vocabulary that cuts English
words into pieces, and it read English comments far worse than Chinese ones; an English-native base
reads them better (docs/sentiment.md).  The rule is on the *normalised* text (what the cache keys and
the models see): a comment with at least one Latin letter and no Chinese, Japanese or Korean character
goes to the English model; everything else (Chinese, mixed Chinese-English, digits-only slang such as
``666``) stays with the student, which was trained on all of it.  Emoji are words after normalising
(``🔥`` -> ``fire``), so an emoji-only comment reads as English.  A comment's route depends on its own
text only, so its score still does not depend on its batch.
"""

from __future__ import annotations

import re

#: Hiragana/katakana, CJK extension A, CJK unified ideographs, Hangul syllables, CJK compatibility ideographs.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def reads_english(normalized: str) -> bool:
    """True when the English companion model should score this (normalised) comment."""
    return _LATIN.search(normalized) is not None and _CJK.search(normalized) is None
