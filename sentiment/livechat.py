"""The project's own labeled live-chat set: hand-written comments plus derived chat variants.

``data/livechat_base.txt`` holds the hand-written comments (Chinese, English and mixed; slang,
emoji, neutral questions, sarcasm).  Each gets one derived variant written the way chat mangles
text (emoji added, characters repeated, full-width letters, a filler like 家人们 / guys).  The split
is decided per hand-written comment from a hash of its text, and its variant follows it, so no
near-duplicate of a held-out comment is ever trained on.  ``data/livechat.tsv`` is the frozen
result (``build_rows`` regenerates it byte for byte; a unit test checks that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sentiment.labels import LABELS, Label

DATA_DIR = Path(__file__).resolve().parent / "data"
BASE_FILE = DATA_DIR / "livechat_base.txt"
TSV_FILE = DATA_DIR / "livechat.tsv"

#: Share of hand-written comments (with their variants) held out, in percent.
TEST_PERCENT = 25

_CODE_TO_LABEL: dict[str, Label] = {"p": "positive", "u": "neutral", "n": "negative"}
_EMOJI = {
    "positive": ["🔥", "👍", "❤️", "😍", "🥰", "👏", "🎉", "💯"],
    "neutral": ["🤔", "👀", "🙋", "❓", "👋", "😶"],
    "negative": ["😡", "👎", "🙄", "😤", "💩", "😒", "😞", "🤡"],
}
_FILLERS_ZH = ["家人们", "宝宝们", "姐妹们", "主播", "啊", "呀"]
_FILLERS_EN = ["guys", "omg", "bro", "lol", "fr", "ngl"]


@dataclass(frozen=True)
class Example:
    """One labeled comment. ``split`` is ``train``, ``dev`` or ``test``; ``lang`` is ``zh``, ``en`` or ``mixed``;
    ``phenomenon`` (evaluation set only) names what the comment tests (slang, sarcasm, negation, ...)."""

    text: str
    label: Label
    lang: str
    split: str
    phenomenon: str = ""


def _digest(text: str, salt: str = "") -> int:
    return int.from_bytes(hashlib.sha1((salt + text).encode()).digest()[:8], "big")


def lang_of(text: str) -> str:
    """``zh`` when the text has any CJK ideograph, else ``en``."""
    return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en"


def split_of(text: str) -> str:
    """Fixed split of a hand-written comment: ``test`` for :data:`TEST_PERCENT` % of texts by hash."""
    return "test" if _digest(text, "split") % 100 < TEST_PERCENT else "train"


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def variant(text: str, label: Label) -> str:
    """A deterministic chat-style rewrite of ``text`` keeping its label."""
    h = _digest(text, "variant")
    kind = h % 4
    emoji = _EMOJI[label][(h >> 8) % len(_EMOJI[label])]
    zh = lang_of(text) == "zh"
    if kind == 0:
        return f"{text}{emoji * (1 + (h >> 16) % 3)}"
    if kind == 1:
        last = text[-1]
        return text + last * (2 + (h >> 16) % 4) + ("!!!" if label != "neutral" else "???")
    if kind == 2 and not zh and text.isascii():
        return _full_width(text)
    fillers = _FILLERS_ZH if zh else _FILLERS_EN
    filler = fillers[(h >> 16) % len(fillers)]
    return f"{filler}{'' if zh else ' '}{text} {emoji}"


def read_base(path: Path = BASE_FILE) -> list[tuple[str, Label]]:
    """Hand-written (text, label) pairs, first occurrence of each text kept."""
    seen: set[str] = set()
    pairs: list[tuple[str, Label]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        code, text = line.split("\t", 1)
        if text in seen:
            continue
        seen.add(text)
        pairs.append((text, _CODE_TO_LABEL[code]))
    return pairs


def build_rows(pairs: list[tuple[str, Label]]) -> Iterator[Example]:
    """Every hand-written comment and its variant, with the comment's split."""
    seen: set[str] = {t for t, _ in pairs}
    for text, label in pairs:
        split = split_of(text)
        yield Example(text, label, lang_of(text), split)
        alt = variant(text, label)
        if alt not in seen:
            seen.add(alt)
            yield Example(alt, label, lang_of(alt), split)


def write_tsv(rows: list[Example], path: Path = TSV_FILE) -> None:
    lines = ["split\tlang\tlabel\ttext"] + [f"{r.split}\t{r.lang}\t{r.label}\t{r.text}" for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def load(split: str | None = None, path: Path = TSV_FILE) -> list[Example]:
    """The frozen live-chat set (optionally one split)."""
    rows: list[Example] = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        sp, lang, label, text = line.split("\t", 3)
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r} in {path}")
        if split is None or sp == split:
            rows.append(Example(text, label, lang, sp))
    return rows


if __name__ == "__main__":
    write_tsv(list(build_rows(read_base())))
