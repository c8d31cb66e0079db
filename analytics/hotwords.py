"""Words of live chat, for the report's hot-word table: the rules of :mod:`schemas.words` (jieba for
Chinese, simple tokens for the rest, a stop list), shared with the dashboard's live hot words."""

from __future__ import annotations

from schemas.words import STOPWORDS, is_word, tokenize, tokenize_cached, warm_up

__all__ = ["STOPWORDS", "is_word", "tokenize", "tokenize_cached", "warm_up"]
