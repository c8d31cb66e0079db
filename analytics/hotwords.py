"""Words of live chat, for the hot-word table: jieba for Chinese, plain words for the rest.

Why these rules: chat is short and noisy.  Single Chinese characters (的, 了, 吗) and punctuation say
nothing, so a word needs two characters; but an emoji on its own (🔥) or a number (666) is exactly
what a hot-word list should surface, so those stay.  English is lower-cased.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

STOPWORDS = frozenset({
    "the", "and", "is", "it", "to", "of", "in", "for", "this", "that", "you", "my", "on", "me", "so",
    "do", "are", "can", "what", "how", "a", "an", "be", "or", "if", "with", "there", "pls", "please",
    "一个", "这个", "那个", "什么", "怎么", "我们", "你们", "他们", "就是", "还是", "可以", "没有", "不是",
    "今天", "已经", "真的", "一下", "现在",
})

_lock = threading.Lock()
_ready = False


def _jieba() -> object:
    global _ready
    import jieba

    with _lock:
        if not _ready:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _ready = True
    return jieba


def warm_up() -> None:
    """Load jieba's dictionary now (e.g. in a thread while queries run)."""
    _jieba()


def is_word(token: str) -> bool:
    """Whether a token counts as a word (see module docstring)."""
    if not token or token.isspace():
        return False
    if len(token) == 1:
        return unicodedata.category(token) == "So"  # a lone emoji / symbol
    if all(unicodedata.category(c)[0] in "PZC" for c in token):
        return False
    return token not in STOPWORDS


def tokenize(text: str) -> Iterator[str]:
    """The words of one comment (jieba's precise mode; ASCII lower-cased)."""
    jieba = _jieba()
    for raw in jieba.cut(text):  # type: ignore[attr-defined]
        token = raw.strip().lower()
        if is_word(token):
            yield token


@lru_cache(maxsize=20_000)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text))


def tokenize_cached(text: str) -> tuple[str, ...]:
    """:func:`tokenize`, remembered: the current and the previous stream share most chat lines."""
    return _tokens(text)
