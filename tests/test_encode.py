"""The response encoder (orjson, json for what orjson refuses) writes what json would."""

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lmrpc.jsonrpc import encode

documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: ids are any JSON number a caller sends
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(documents)
def test_encodes_what_json_reads_back_the_same(document: Any) -> None:
    assert json.loads(encode(document)) == document


def test_a_huge_id_and_non_ascii_text_are_written_as_json_writes_them() -> None:
    response = {"jsonrpc": "2.0", "result": {"name": "Ölfeld ✓"}, "id": 2**70}
    assert (
        encode(response) == json.dumps(response, separators=(",", ":"), ensure_ascii=False).encode()
    )
