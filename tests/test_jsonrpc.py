"""The JSON-RPC envelope as a pure function: ``lmrpc.jsonrpc.decode`` without a server."""

import json
from typing import Any

import pytest

from lmrpc import jsonrpc
from lmrpc.errors import INVALID_REQUEST, PARSE_ERROR, RpcError

MAX_BATCH = 5


def call(method: str = "products.list", **members: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, **members}


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


def refused(raw: bytes, max_batch: int = MAX_BATCH) -> RpcError:
    """The error that refuses the whole body; fails the test if the body is accepted."""
    with pytest.raises(RpcError) as caught:
        jsonrpc.decode(raw, max_batch)
    return caught.value


def only_entry(raw: bytes) -> jsonrpc.Call | jsonrpc.BadCall:
    is_batch, entries = jsonrpc.decode(raw, MAX_BATCH)
    assert not is_batch
    assert len(entries) == 1
    return entries[0]


def bad(raw: bytes) -> jsonrpc.BadCall:
    entry = only_entry(raw)
    assert isinstance(entry, jsonrpc.BadCall), entry
    return entry


# --- well-formed requests ------------------------------------------------------------------


def test_a_single_call_with_named_params() -> None:
    entry = only_entry(body(call("products.create", params={"name": "abaqus"}, id=7)))
    assert entry == jsonrpc.Call("products.create", {"name": "abaqus"}, 7)
    assert not entry.is_notification


def test_a_call_without_id_is_a_notification_and_null_id_is_not() -> None:
    notification = only_entry(body(call()))
    assert isinstance(notification, jsonrpc.Call)
    assert notification.is_notification
    null_id = only_entry(body(call(id=None)))
    assert isinstance(null_id, jsonrpc.Call)
    assert not null_id.is_notification
    assert null_id.id is None


def test_params_absent_or_positional_are_passed_on_for_the_dispatcher() -> None:
    assert only_entry(body(call(id=1))) == jsonrpc.Call("products.list", None, 1)
    positional = only_entry(body(call(params=[1, 2], id=1)))
    assert positional == jsonrpc.Call("products.list", [1, 2], 1)


@pytest.mark.parametrize("id_", [1, 0, -5, 2**63 - 1, -(2**63) + 1, "", "abc", "x" * 255])
def test_valid_ids_are_kept_as_given(id_: Any) -> None:
    entry = only_entry(body(call(id=id_)))
    assert isinstance(entry, jsonrpc.Call)
    assert entry.id == id_
    assert type(entry.id) is type(id_)


def test_a_batch_keeps_the_order_of_its_entries() -> None:
    raw = body([call("a", id=3), 42, call("b"), call("c", id="x")])
    is_batch, entries = jsonrpc.decode(raw, MAX_BATCH)
    assert is_batch
    assert entries == [
        jsonrpc.Call("a", None, 3),
        jsonrpc.BadCall(None, "a request must be a JSON object"),
        jsonrpc.Call("b", None),
        jsonrpc.Call("c", None, "x"),
    ]


def test_a_batch_of_exactly_the_limit_is_accepted() -> None:
    is_batch, entries = jsonrpc.decode(body([call(id=i) for i in range(MAX_BATCH)]), MAX_BATCH)
    assert is_batch
    assert [entry.id for entry in entries] == list(range(MAX_BATCH))


def test_non_ascii_text_and_escaped_surrogate_pairs_are_text() -> None:
    entry = only_entry(
        b'{"jsonrpc":"2.0","method":"m","params":{"n":"\\ud83d\\ude00 \xc3\xa9"},"id":1}'
    )
    assert isinstance(entry, jsonrpc.Call)
    assert entry.params == {"n": "\U0001f600 \u00e9"}
    # an escaped backslash followed by "ud800" is plain text, not a surrogate
    entry = only_entry(b'{"jsonrpc":"2.0","method":"m","params":{"n":"\\\\ud800"},"id":1}')
    assert isinstance(entry, jsonrpc.Call)
    assert entry.params == {"n": "\\ud800"}


def test_finite_floats_are_numbers() -> None:
    entry = only_entry(body(call(params={"x": 1.5e300, "y": -0.0}, id=1)))
    assert isinstance(entry, jsonrpc.Call)
    assert entry.params == {"x": 1.5e300, "y": -0.0}


# --- bodies refused whole: -32700 ----------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"{",
        b'{"jsonrpc": "2.0", "method": "m", "id": 1',
        b"[1, 2,]",
        b"{'jsonrpc': '2.0'}",
        b'{"jsonrpc":"2.0","method":"m","id":1} trailing',
        b'{"jsonrpc":"2.0","method":"m","id":1}{"jsonrpc":"2.0","method":"m","id":2}',
    ],
)
def test_text_that_is_not_json_is_a_parse_error(raw: bytes) -> None:
    error = refused(raw)
    assert error.code == PARSE_ERROR
    assert error.message.startswith("Parse error")
    assert error.data is None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"jsonrpc":"2.0","method":"\xff","id":1}',  # not UTF-8 at all
        b'{"jsonrpc":"2.0","method":"\xc3","id":1}',  # truncated sequence
        b'{"jsonrpc":"2.0","method":"\xed\xa0\x80","id":1}',  # UTF-8-encoded surrogate
        b'{"jsonrpc":"2.0","method":"\xc0\xaf","id":1}',  # overlong encoding
        b"\xef\xbb\xbf" + body(call(id=1)),  # byte order mark
        json.dumps(call(id=1)).encode("utf-16-le"),
        json.dumps(call(id=1)).encode("utf-32"),
    ],
)
def test_bytes_that_are_not_utf8_json_are_a_parse_error(raw: bytes) -> None:
    assert refused(raw).code == PARSE_ERROR


@pytest.mark.parametrize(
    "raw",
    [
        b'{"jsonrpc":"2.0","method":"m","id":"\\ud800"}',
        b'{"jsonrpc":"2.0","method":"m\\udfff","id":1}',
        b'{"jsonrpc":"2.0","method":"m","params":{"name":"a\\ud83d"},"id":1}',
        b'{"jsonrpc":"2.0","method":"m","params":{"\\udc00":1},"id":1}',
        b'[{"jsonrpc":"2.0","method":"m","params":{"a":[[["\\uDE00"]]]},"id":1}]',
    ],
)
def test_lone_surrogate_escapes_are_a_parse_error(raw: bytes) -> None:
    """They are not text: they could be neither stored nor encoded in a response."""
    error = refused(raw)
    assert error.code == PARSE_ERROR
    assert "surrogate" in error.message


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["id", "params"])
def test_nan_and_infinity_are_a_parse_error(constant: str, where: str) -> None:
    value = constant if where == "id" else f'{{"x": [1, {constant}]}}, "id": 1'
    raw = f'{{"jsonrpc": "2.0", "method": "m", "{where}": {value}}}'.encode()
    error = refused(raw)
    assert error.code == PARSE_ERROR
    assert constant in error.message


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.0e999999"])
def test_floats_out_of_range_are_a_parse_error_not_infinity(number: str) -> None:
    raw = f'{{"jsonrpc": "2.0", "method": "m", "params": {{"x": {number}}}, "id": 1}}'.encode()
    error = refused(raw)
    assert error.code == PARSE_ERROR
    assert "out of range" in error.message


@pytest.mark.parametrize(
    "raw",
    [
        b'{"jsonrpc":"2.0","method":"products.get","method":"products.delete","id":1}',
        b'{"jsonrpc":"2.0","method":"m","id":1,"id":2}',
        b'{"jsonrpc":"2.0","method":"m","params":{"quantity":1,"quantity":1000},"id":1}',
        b'[{"jsonrpc":"2.0","method":"m","id":1},{"jsonrpc":"2.0","jsonrpc":"2.0","method":"m"}]',
    ],
)
def test_duplicate_member_names_are_refused_not_guessed(raw: bytes) -> None:
    """Parsers disagree which duplicate wins; a proxy and the server must never disagree."""
    error = refused(raw)
    assert error.code == PARSE_ERROR
    assert "duplicate member" in error.message


def test_many_distinct_members_with_one_late_duplicate_are_refused_quickly() -> None:
    members = ",".join(f'"k{i}":{i}' for i in range(200_000))
    raw = f'{{"jsonrpc":"2.0","method":"m","params":{{{members},"k0":0}},"id":1}}'.encode()
    assert refused(raw).code == PARSE_ERROR


@pytest.mark.parametrize("opening, closing", [(b"[", b"]"), (b'{"a":', b"}"), (b'[{"a":', b"}]")])
def test_deep_nesting_is_a_parse_error_never_a_crash(opening: bytes, closing: bytes) -> None:
    depth = 100_000
    error = refused(opening * depth + b"1" + closing * depth)
    assert error.code == PARSE_ERROR
    assert error.message == "Parse error: nested too deeply"


def test_deep_nesting_inside_params_is_a_parse_error_too() -> None:
    raw = b'{"jsonrpc":"2.0","method":"m","params":{"a":' + b"[" * 100_000 + b"]" * 100_000
    assert refused(raw + b'},"id":1}').code == PARSE_ERROR


def test_moderate_nesting_is_fine() -> None:
    depth = 100
    raw = b'{"jsonrpc":"2.0","method":"m","params":{"a":' + b"[" * depth + b"]" * depth
    entry = only_entry(raw + b'},"id":1}')
    assert isinstance(entry, jsonrpc.Call)


def test_an_integer_too_long_to_convert_is_a_parse_error() -> None:
    raw = b'{"jsonrpc":"2.0","method":"m","id":' + b"9" * 5000 + b"}"
    assert refused(raw).code == PARSE_ERROR


# --- bodies refused whole: -32600 ----------------------------------------------------------


def test_an_empty_batch_is_one_invalid_request() -> None:
    error = refused(b"[]")
    assert error.code == INVALID_REQUEST
    assert error.data == {"reason": "empty batch"}
    assert refused(b" [ ] ").code == INVALID_REQUEST


def test_a_batch_over_the_limit_is_one_invalid_request() -> None:
    error = refused(body([call(id=i) for i in range(MAX_BATCH + 1)]))
    assert error.code == INVALID_REQUEST
    assert error.data == {"reason": f"batch of {MAX_BATCH + 1} calls exceeds {MAX_BATCH}"}


def test_the_batch_limit_counts_entries_even_when_they_are_not_objects() -> None:
    assert refused(body([1] * (MAX_BATCH + 1))).code == INVALID_REQUEST


# --- entries answered with -32600 ----------------------------------------------------------


@pytest.mark.parametrize("document", [1, "call", None, True, 1.5])
def test_a_body_that_is_not_an_object_is_an_invalid_request_with_null_id(document: Any) -> None:
    assert bad(body(document)) == jsonrpc.BadCall(None, "a request must be a JSON object")


@pytest.mark.parametrize(
    "document, reason",
    [
        ({"method": "m", "id": 4}, 'jsonrpc must be "2.0"'),
        ({"jsonrpc": "1.0", "method": "m", "id": 4}, 'jsonrpc must be "2.0"'),
        ({"jsonrpc": 2.0, "method": "m", "id": 4}, 'jsonrpc must be "2.0"'),
        ({"jsonrpc": "2.0", "id": 4}, "method must be a string"),
        ({"jsonrpc": "2.0", "method": 1, "id": 4}, "method must be a string"),
        ({"jsonrpc": "2.0", "method": None, "id": 4}, "method must be a string"),
        ({"jsonrpc": "2.0", "method": ["m"], "id": 4}, "method must be a string"),
        ({"jsonrpc": "2.0", "method": "m", "params": "x", "id": 4}, "params must be"),
        ({"jsonrpc": "2.0", "method": "m", "params": 3, "id": 4}, "params must be"),
        ({"jsonrpc": "2.0", "method": "m", "params": None, "id": 4}, "params must be"),
        ({"jsonrpc": "2.0", "method": "m", "id": 4, "extra": 1}, "unknown members: extra"),
    ],
)
def test_a_malformed_request_keeps_its_valid_id(document: dict[str, Any], reason: str) -> None:
    entry = bad(body(document))
    assert entry.id == 4
    assert entry.reason.startswith(reason)


@pytest.mark.parametrize(
    "id_",
    [
        1.5,
        1.0,
        True,
        False,
        [1],
        {"a": 1},
        2**63,
        -(2**63),
        10**100,
        "x" * 256,
    ],
)
def test_a_bad_id_is_an_invalid_request_answered_with_null_id(id_: Any) -> None:
    assert bad(body(call(id=id_))) == jsonrpc.BadCall(
        None, "id must be a string, an integer or null"
    )


def test_a_huge_integer_id_does_not_leak_into_the_answer() -> None:
    raw = b'{"jsonrpc":"2.0","method":"m","id":' + b"9" * 4000 + b"}"
    entry = bad(raw)
    response = jsonrpc.bad_call_response(entry)
    assert response["id"] is None
    assert response["error"]["code"] == INVALID_REQUEST


# --- responses -----------------------------------------------------------------------------


def test_responses_encode_compactly_as_utf8() -> None:
    encoded = jsonrpc.encode([jsonrpc.result(1, {"name": "é"}), jsonrpc.result("a", None)])
    assert encoded == '[{"jsonrpc":"2.0","result":{"name":"é"},"id":1},'.encode() + (
        b'{"jsonrpc":"2.0","result":null,"id":"a"}]'
    )


def test_an_error_response_carries_code_message_and_data() -> None:
    response = jsonrpc.bad_call_response(jsonrpc.BadCall(3, "method must be a string"))
    assert response == {
        "jsonrpc": "2.0",
        "error": {
            "code": -32600,
            "message": "Invalid request",
            "data": {"reason": "method must be a string"},
        },
        "id": 3,
    }
    assert "data" not in jsonrpc.error(None, RpcError(PARSE_ERROR))["error"]
