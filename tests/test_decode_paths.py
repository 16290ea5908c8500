"""The request decoder's two parsers give the same answers.

``lmrpc.jsonrpc`` reads bodies with orjson and lets the strict parser (``json`` with a hook
per object refusing repeated names) decide wherever orjson may read a body otherwise. These
properties draw JSON texts with the cases where the two differ: repeated names at any
depth, colons in strings (escaped too), integers past 64 bits, out-of-range floats, lone
surrogates, odd Unicode and escapes, deep nesting; and arbitrary bytes. Whatever the text,
the fast path's document (or error message) is the strict one's.
``LMRPC_FUZZ_EXAMPLES`` raises the number of cases (default 5,000 in all, a few seconds).
"""

import json
import os
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmrpc import jsonrpc

EXAMPLES = max(int(os.environ.get("LMRPC_FUZZ_EXAMPLES", "5000")) // 3, 50)
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def outcome(parse: Any, body: bytes) -> tuple[str, str]:
    """A parser's answer: the document by type and value (``1 == 1.0 == True`` in Python),
    or the error as ``decode`` words it."""
    try:
        return "document", ascii(parse(body))
    except (ValueError, RecursionError) as error:
        return "error", jsonrpc._short(error)


def assert_same(body: bytes) -> None:
    assert outcome(jsonrpc._parse, body) == outcome(jsonrpc._strict_parse, body)


# -- JSON texts, written by hand so that names may repeat and strings be escaped oddly ------

keys = st.sampled_from(["a", "b", "id", "a:b", ":", "é", "\u2028", "\\", '"']) | st.text(max_size=4)
strings = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", ":", "a:b", "::", "[", "{", "}", "]", "\\u", "𝄞", "\u202e", "\x7f"]),
)
numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e400", "-1e400", "1e-400", "-0", "-0.0", "1E+2", "0.1e1", "1.0e999999"]),
    st.sampled_from(["NaN", "Infinity", "01", "1.", ".5", "+1", "9" * 30, "0." + "1" * 40]),
)


@st.composite
def string_text(draw: st.DrawFn, value: str) -> str:
    """``value`` as a JSON string: raw or ASCII-only, with characters escaped at will (a
    colon as ``\\u003a`` too), or with a lone surrogate escape put in."""
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))[1:-1]
    if draw(st.booleans()):
        text = text.replace(":", draw(st.sampled_from(["\\u003a", "\\u003A", ":"])))
    if draw(st.integers(0, 9)) == 0:
        text += draw(st.sampled_from(["\\ud800", "\\udfff", "\\uDE00x", "\\\\ud800", "\\/"]))
    return f'"{text}"'


def values(depth: int) -> st.SearchStrategy[str]:
    """JSON value texts nested at most ``depth`` deep; objects may repeat a name."""
    scalars = st.one_of(
        st.sampled_from(["null", "true", "false"]), numbers, strings.flatmap(string_text)
    )
    if depth == 0:
        return scalars
    inner = values(depth - 1)
    arrays = st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
    members = st.tuples(keys.flatmap(string_text), inner).map(lambda kv: f"{kv[0]}:{kv[1]}")
    objects = st.lists(members, max_size=4).map(lambda items: "{" + ",".join(items) + "}")
    return st.one_of(scalars, arrays, objects)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A JSON text, sometimes spaced, mangled or with one member repeated."""
    text = draw(values(4))
    if draw(st.booleans()) and text.startswith("{") and len(text) > 2:
        member = draw(st.tuples(keys.flatmap(string_text), values(1)))
        text = f"{text[:-1]},{member[0]}:{member[1]},{member[0]}:{member[1]}}}"
    if draw(st.booleans()):
        text = text.replace(",", draw(st.sampled_from([" , ", ",\n\t", ",\r"])))
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.binary(max_size=3)) + raw[cut:]
    return raw


@SETTINGS
@given(bodies())
def test_json_texts_read_the_same_by_both_parsers(body: bytes) -> None:
    assert_same(body)


@SETTINGS
@given(st.binary(max_size=64))
def test_any_bytes_read_the_same_by_both_parsers(body: bytes) -> None:
    assert_same(body)


@SETTINGS
@given(st.lists(st.tuples(keys, st.integers(0, 3)), max_size=6), st.integers(0, 40))
def test_a_repeated_name_at_any_depth_is_refused(members: list[Any], depth: int) -> None:
    inner = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in members) + "}"
    body = ('{"a":[' * depth + inner + "]}" * depth).encode()
    assert_same(body)
    repeated = len({k for k, _ in members}) < len(members)
    assert outcome(jsonrpc._parse, body)[0] == ("error" if repeated else "document")


@settings(max_examples=60, deadline=None)
@given(st.integers(100, 400), st.sampled_from([("[", "]"), ('{"a":', "}"), ('[{"a":', "}]")]))
def test_nesting_about_the_fast_paths_limit_reads_the_same(
    depth: int, brackets: tuple[str, str]
) -> None:
    """(Deeper, json's own limit depends on the interpreter's stack at the call.)"""
    opening, closing = brackets
    assert_same((opening * depth + "1" + closing * depth).encode())


def test_an_ordinary_batch_takes_the_fast_path() -> None:
    """The point of it: a batch of bookings is read by orjson alone."""
    batch = [
        {
            "jsonrpc": "2.0",
            "method": "bookings.create",
            "params": {"job_id": i, "feature_id": 7, "quantity": 1},
            "id": i,
        }
        for i in range(1, 1001)
    ]
    body = json.dumps(batch).encode()
    assert jsonrpc._orjson_agrees(body, orjson.loads(body))
    assert_same(body)


def test_a_colon_in_a_string_or_an_escaped_one_is_no_repeated_name() -> None:
    for body in [b'{"a":"x:y","b":1}', b'{"a":"x\\u003ay"}', b'{"a:b":1,"a":2}']:
        assert outcome(jsonrpc._parse, body)[0] == "document"
        assert_same(body)
    assert outcome(jsonrpc._parse, b'{"a":1,"\\u0061":2}')[0] == "error"
