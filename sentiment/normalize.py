"""Text normalisation applied before tokenising, in training and in scoring alike.

Why: live chat writes the same thing in many ways (``哈哈哈哈哈``, ``hahahaha``, ``ｌｏｖｅ``,
``🔥🔥🔥``).  Folding them to one form helps the model (emoji become words the tokenizer knows instead
of ``[UNK]``) and makes the LRU cache hit far more often.  The function is pure and idempotent:
``normalize(normalize(t)) == normalize(t)``, so a cached key is stable.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

#: Longest run of one repeated character or syllable kept (``哈哈哈哈哈`` -> ``哈哈哈``).
MAX_REPEAT = 3

#: Characters of more than this many are cut; the models see at most 40 tokens anyway.
MAX_CHARS = 200

# Emoji whose Unicode names say little about sentiment, or say it in a long way.
_EMOJI_WORDS: dict[str, str] = {
    "\U0001f525": "fire",  # 🔥
    "\u2764": "love",  # ❤
    "\U0001f495": "love",  # 💕
    "\U0001f496": "love",  # 💖
    "\U0001f497": "love",  # 💗
    "\U0001f498": "love",  # 💘
    "\U0001f499": "love",  # 💙
    "\U0001f49c": "love",  # 💜
    "\U0001f44d": "thumbs up",  # 👍
    "\U0001f44e": "thumbs down",  # 👎
    "\U0001f44f": "clapping",  # 👏
    "\U0001f60d": "heart eyes",  # 😍
    "\U0001f970": "smiling hearts",  # 🥰
    "\U0001f602": "laughing",  # 😂
    "\U0001f923": "laughing",  # 🤣
    "\U0001f621": "angry",  # 😡
    "\U0001f620": "angry",  # 😠
    "\U0001f624": "annoyed",  # 😤
    "\U0001f644": "eye roll",  # 🙄
    "\U0001f612": "unamused",  # 😒
    "\U0001f61e": "disappointed",  # 😞
    "\U0001f62d": "crying",  # 😭
    "\U0001f921": "clown",  # 🤡
    "\U0001f4a9": "poop",  # 💩
    "\U0001f643": "upside down face",  # 🙃
    "\U0001f389": "party",  # 🎉
    "\U0001f914": "thinking",  # 🤔
    "\U0001f440": "eyes",  # 👀
    "\U0001f64b": "raising hand",  # 🙋
    "\u2753": "question",  # ❓
    "\U0001f44b": "waving",  # 👋
}

_DROP_WORDS = re.compile(r"\b(sign|symbol|emoji|variation selector-?\d*)\b")
_REPEAT_CHAR = re.compile(rf"(.)\1{{{MAX_REPEAT},}}", re.DOTALL)
_REPEAT_UNIT = re.compile(rf"(..)\1{{{MAX_REPEAT},}}", re.DOTALL)
_REPEAT_WORD = re.compile(rf"(?<!\S)(\S+)(?: \1){{{MAX_REPEAT},}}(?!\S)")
_SPACES = re.compile(r"\s+")
#: A lone UTF-16 surrogate (undecodable input read with ``surrogateescape``, or bad JSON escapes).
_SURROGATE = re.compile("[\ud800-\udfff]")


@lru_cache(maxsize=4096)
def _emoji_word(ch: str) -> str:
    """A short lower-case English name of a symbol character ('' for ones to drop)."""
    if ch in _EMOJI_WORDS:
        return _EMOJI_WORDS[ch]
    name = unicodedata.name(ch, "").lower()
    return _SPACES.sub(" ", _DROP_WORDS.sub("", name)).strip()


def _is_symbol(ch: str) -> bool:
    return unicodedata.category(ch) == "So" or 0x1F000 <= ord(ch) <= 0x1FAFF


def emoji_to_words(text: str) -> str:
    """Replace each pictographic symbol by `` name `` (🔥 -> `` fire ``); drop joiners/selectors."""
    if text.isascii():
        return text
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        # ZWJ, selectors, U+FFFD (what undecodable input became), skin tones
        if code in (0x200D, 0xFE0F, 0xFE0E, 0xFFFD) or 0x1F3FB <= code <= 0x1F3FF:
            continue
        if _is_symbol(ch):
            word = _emoji_word(ch)
            out.append(f" {word} " if word else " ")
        else:
            out.append(ch)
    return "".join(out)


def squeeze_repeats(text: str) -> str:
    """Cap runs of one character or two-character unit at :data:`MAX_REPEAT` (6666666 -> 666)."""
    text = _REPEAT_CHAR.sub(lambda m: m.group(1) * MAX_REPEAT, text)
    text = _REPEAT_UNIT.sub(lambda m: m.group(1) * MAX_REPEAT, text)
    return _REPEAT_WORD.sub(lambda m: " ".join([m.group(1)] * MAX_REPEAT), text)


def _once(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = squeeze_repeats(_SPACES.sub(" ", emoji_to_words(text)).strip())
    return text[:MAX_CHARS].strip()


def normalize(text: str) -> str:
    """NFKC (full-width to ASCII), lower case, emoji to words, repeats squeezed, spaces collapsed.

    Applied until nothing changes (at most a few passes) so that the result is a fixpoint: emoji
    names can expose new repeats (🔥🔥🔥🔥 -> fire fire fire fire -> fire fire fire).
    """
    text = _SURROGATE.sub(" ", text[: MAX_CHARS * 4])  # no tokenizer (or JSON encoder) takes them
    for _ in range(5):
        out = _once(text)
        if out == text:
            return out
        text = out
    return text
