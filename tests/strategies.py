"""Hypothesis strategies derived from the msgspec event definitions themselves.

Deriving them from ``msgspec.inspect`` (not writing one per type) means a new field or a changed
range is covered by the property tests the moment it is added to ``schemas/events.py``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from schemas.base import MAX_TEXT_CHARS

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"

#: Text that exercises normalisation: CJK, emoji, full-width forms, combining marks, odd spaces, controls.
_TEXT_ALPHABET = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(list("好评差666哈😀🔥ＡＢＣ１２３　\u3000\t\n\u200b\u202e\u0301e\u00e9")),
)


def _for_type(t: mi.Type) -> st.SearchStrategy[Any]:
    if isinstance(t, mi.Metadata):
        return _for_type(t.type)
    if isinstance(t, mi.IntType):
        lo = t.ge if t.ge is not None else -(2**63)
        hi = t.le if t.le is not None else 2**63 - 1
        return st.integers(min_value=lo, max_value=hi)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.FloatType):
        return st.floats(
            min_value=t.ge if t.ge is not None else -1e12,
            max_value=t.le if t.le is not None else 1e12,
            allow_nan=False,
            allow_infinity=False,
        )
    if isinstance(t, mi.StrType):
        if t.pattern is not None:
            return st.text(alphabet=ID_ALPHABET, min_size=t.min_length or 1, max_size=t.max_length or 64)
        return st.text(alphabet=_TEXT_ALPHABET, min_size=max(t.min_length or 0, 1), max_size=MAX_TEXT_CHARS + 50)
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.UnionType):
        return st.one_of([_for_type(x) for x in t.types])
    if isinstance(t, mi.BytesType):
        return st.binary(max_size=256)
    if isinstance(t, mi.DictType):
        return st.dictionaries(_for_type(t.key_type), _for_type(t.value_type), max_size=4)
    if isinstance(t, mi.StructType):
        return struct_kwargs(t.cls).map(lambda kw: t.cls(**kw))
    raise NotImplementedError(f"no strategy for {t!r}")


def struct_kwargs(cls: type[msgspec.Struct]) -> st.SearchStrategy[dict[str, Any]]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return st.fixed_dictionaries({f.name: _for_type(f.type) for f in info.fields})


@st.composite
def valid_events(draw: st.DrawFn, cls: type[msgspec.Struct]) -> msgspec.Struct:
    """Events of ``cls`` that its own validation accepts (draws that fail a cross-field rule are retried)."""
    for _ in range(50):
        kwargs = draw(struct_kwargs(cls))
        try:
            return cls(**kwargs)
        except ValueError:
            continue
    from hypothesis import assume

    assume(False)
    raise AssertionError("unreachable")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=20,
)
