"""The words of live chat, defined once for the live hot words (``streams/counters/hotwords.py``) and
the report's hot-word table (``analytics/hotwords.py``).

Rules, and why: chat is short and noisy.  Runs of Chinese characters are cut by jieba (its precise
mode); everything else is split simply into ASCII words (lower-cased, ``don't`` kept whole),
numbers and single symbols.  A word needs two characters, since single characters (的, 了, a, 1)
say nothing; but a lone emoji (🔥) is exactly what a hot-word list should surface, and so is a
number like 666.  Stop words (fillers of both languages) and punctuation are dropped.  jieba is
imported on first use (loading its dictionary takes ~1 s: call :func:`warm_up` early).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

STOPWORDS = frozenset({
    "the", "and", "is", "it", "to", "of", "in", "for", "this", "that", "you", "my", "on", "me", "so",
    "do", "are", "can", "what", "how", "a", "an", "be", "or", "if", "with", "there", "pls", "please",
    "was", "its", "it's", "i'm", "im", "just", "we", "our", "your", "at", "as", "but", "not", "have", "has",
    "一个", "这个", "那个", "什么", "怎么", "我们", "你们", "他们", "就是", "还是", "可以", "没有", "不是",
    "今天", "已经", "真的", "一下", "现在", "这么", "那么", "还有", "然后", "因为", "所以", "但是",
})

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_OTHER = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|\S")

_lock = threading.Lock()
_jieba: Any = None


def _load() -> Any:
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def warm_up() -> None:
    """Load jieba's dictionary now (e.g. in a thread while other work runs)."""
    _load()


def is_word(token: str) -> bool:
    """Whether a token counts as a word (see the module docstring)."""
    if not token or token.isspace():
        return False
    if len(token) == 1:
        return unicodedata.category(token) == "So"  # a lone emoji / symbol
    if all(unicodedata.category(c)[0] in "PZC" for c in token):
        return False
    return token not in STOPWORDS


def tokenize(text: str) -> Iterator[str]:
    """The words of one comment, in order."""
    text = text.lower()
    pos = 0
    for run in _CJK.finditer(text):
        yield from _simple(text[pos:run.start()])
        for raw in _load().cut(run.group()):
            token = raw.strip()
            if is_word(token):
                yield token
        pos = run.end()
    yield from _simple(text[pos:])


def _simple(text: str) -> Iterator[str]:
    for m in _OTHER.finditer(text):
        if is_word(m.group()):
            yield m.group()


@lru_cache(maxsize=20_000)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text))


def tokenize_cached(text: str) -> tuple[str, ...]:
    """:func:`tokenize`, remembered: chat repeats itself (``666``, ``yyds``)."""
    return _tokens(text)
