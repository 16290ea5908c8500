"""Hostile input: hypothesis-generated ``/rpc`` bodies against a real server.

Random JSON, mutated valid requests, deep nesting, huge numbers, wrong types, unicode,
invalid UTF-8, giant strings and duplicate keys. Every answer must be a valid JSON-RPC
response with a documented code, never a 5xx, never -32603 (an unhandled exception), and
the server log must hold no traceback afterwards.

One server on SQLite serves the whole run over one keep-alive connection: the envelope and
the params models are the same on both backends, so the fuzzer needs only one.
``LMRPC_FUZZ_EXAMPLES`` raises the number of cases (default 5,000, about 30 s here).
"""

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lmrpc.methods  # noqa: F401  (registers the methods)
from lmrpc.registry import METHODS
from tests.factories import feature_in
from tests.server import Server, running_server, server_env
from tests.tokens import TokenFactory

EXAMPLES = int(os.environ.get("LMRPC_FUZZ_EXAMPLES", "5000"))
MAX_BODY = 4 * 1024 * 1024
ALLOWED = {-32700, -32600, -32601, -32602, -32003, -32004, -32009, -32010, -32011}
NAMES = sorted(METHODS)
FIELDS = sorted({field for m in METHODS.values() for field in m.params.model_fields})

# -- strategies ------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
)
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", " ", "\x00", "abaqus.abaqus", "a.b", "0", "1", "null", "ü", "𝄞", "\u202e"]
    ),
    st.integers(min_value=250, max_value=2_000).map(lambda n: "x" * n),  # over the limits
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), texts), inner, max_size=3),
    ),
    max_leaves=6,
)
# params that look right: known field names with plausible or wrong values
plausible = st.one_of(st.integers(min_value=0, max_value=5), texts, values)
params = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), plausible, max_size=4),
    values,
    st.just([1, 2]),
)
ids = st.one_of(st.integers(min_value=-(2**64), max_value=2**64), texts, st.none(), values)
methods = st.one_of(st.sampled_from(NAMES), texts, values)


@st.composite
def requests(draw: st.DrawFn) -> Any:
    request: dict[str, Any] = {}
    if draw(st.booleans()) or draw(st.booleans()):
        request["jsonrpc"] = draw(st.one_of(st.just("2.0"), scalars))
    request["method"] = draw(methods)
    if draw(st.booleans()):
        request["params"] = draw(params)
    if draw(st.booleans()):
        request["id"] = draw(ids)
    if draw(st.integers(0, 9)) == 0:
        request[draw(texts)] = draw(scalars)  # an unknown member
    return request


def _encode(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid-looking body with bytes replaced, inserted, deleted or cut."""
    body = bytearray(
        _encode(draw(st.one_of(requests(), st.lists(requests(), min_size=1, max_size=3))))
    )
    for _ in range(draw(st.integers(1, 4))):
        if not body:
            break
        at = draw(st.integers(0, len(body) - 1))
        match draw(st.integers(0, 3)):
            case 0:
                body[at] = draw(st.integers(0, 255))
            case 1:
                body[at:at] = draw(st.binary(min_size=1, max_size=4))
            case 2:
                del body[at]
            case _:
                del body[at:]
    return bytes(body)


def _nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    inner = b'{"jsonrpc":"2.0","method":"products.list","params":' * depth
    return inner + b"{}" + b"}" * depth


def _giant(size: int, where: str) -> bytes:
    """A request with one giant string (some bodies over the 4 MiB limit)."""
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": "products.create", "id": 9}
    giant = "é" * (size // 2)
    match where:
        case "method":
            request["method"] = giant
        case "id":
            request["id"] = giant
        case _:
            request["params"] = {"name": giant}
    return _encode(request)


special = st.one_of(
    st.builds(
        _nested,
        st.sampled_from([2, 10, 100, 999, 1_000, 5_000, 100_000]),
        st.sampled_from(["array", "object"]),
    ),
    st.builds(
        _giant,
        st.sampled_from([10_000, 100_000, 1_000_000, MAX_BODY + 1]),
        st.sampled_from(["method", "id", "params"]),
    ),
    st.sampled_from(
        [
            b'{"jsonrpc":"2.0","method":"products.list","id":1,"id":2}',  # duplicate keys
            b'{"jsonrpc":"2.0","method":"products.list","params":{"limit":1,"limit":2},"id":3}',
            b'{"jsonrpc":"2.0","method":"features.get","params":{"id":1e400},"id":4}',
            b'{"jsonrpc":"2.0","method":"features.get","params":{"id":NaN},"id":5}',
            b'{"jsonrpc":"2.0","method":"products.create","params":{"name":"\\ud800"},"id":6}',
            b'{"jsonrpc":"2.0","method":"products.create","params":{"name":"\xff\xfe"},"id":7}',
            b"\xef\xbb\xbf{}",  # a byte order mark
            b'"\\udfff"',
            b"",
            b"[]",
            b"[[]]",
            b"null",
        ]
    ),
    st.integers(4300, 20_000).map(
        lambda n: (
            b'{"jsonrpc":"2.0","method":"features.get","params":{"id":' + b"9" * n + b'},"id":8}'
        )
    ),
    st.binary(max_size=200),
)
bodies = st.one_of(
    requests().map(_encode),
    st.lists(requests(), min_size=0, max_size=4).map(_encode),
    values.map(_encode),
    mutated(),
    special,
)

# -- the oracle ------------------------------------------------------------------------------


def _strict_json(body: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return False, None


def _is_id(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, str)
        or (isinstance(value, int) and not isinstance(value, bool))
    )


def check_response(item: Any) -> int | None:
    """A valid JSON-RPC response object with a documented code; returns the code."""
    assert isinstance(item, dict), item
    assert item.get("jsonrpc") == "2.0", item
    assert _is_id(item.get("id", "missing")), item
    assert set(item) in ({"jsonrpc", "id", "result"}, {"jsonrpc", "id", "error"}), item
    if "result" in item:
        return None
    error = item["error"]
    assert isinstance(error, dict) and isinstance(error.get("message"), str), item
    assert set(error) <= {"code", "message", "data"}, item
    assert error["code"] in ALLOWED, item
    code: int = error["code"]
    return code


def check(body: bytes, response: httpx.Response) -> None:
    assert response.status_code < 500, (body[:300], response.status_code, response.text[:300])
    if len(body) > MAX_BODY or response.status_code == 413:
        assert len(body) > MAX_BODY and response.status_code == 413
        assert response.headers.get("connection") == "close"  # the unread rest is dropped
        assert response.json()["error"]["code"] == -32600
        return
    if response.status_code == 204:
        assert response.content == b""
        parsed, document = _strict_json(body)
        entries = document if isinstance(document, list) else [document]
        assert parsed and all(isinstance(e, dict) and "id" not in e for e in entries), body[:300]
        return
    assert response.status_code == 200, (response.status_code, response.text[:300])
    answer = response.json()
    parsed, document = _strict_json(body)
    if not parsed:  # not JSON to any parser: a parse error, id null
        assert isinstance(answer, dict) and answer["error"]["code"] == -32700, answer
        assert answer["id"] is None
        return
    if isinstance(answer, list):
        assert isinstance(document, list) and answer, answer
        for item in answer:
            check_response(item)
        assert len(answer) <= len(document)
        return
    code = check_response(answer)
    if isinstance(document, dict) and code not in (-32700, -32600):
        assert answer["id"] == document.get("id"), (document, answer)


# -- the test --------------------------------------------------------------------------------


@pytest.fixture
def fuzz_server(tokens: TokenFactory, tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'fuzz.sqlite3'}"
    from storage import migrate

    migrate.upgrade(url)
    feature_in(url, 10, product="abaqus", name="abaqus")
    with running_server(server_env(url, tokens, tmp_path / "data"), tmp_path) as server:
        yield server


def test_hostile_bodies_get_documented_answers(fuzz_server: Server, tokens: TokenFactory) -> None:
    token = tokens.mint("admin", ttl=24 * 3600)  # the long run outlasts the default 10 min
    cases = 0
    http_seconds = 0.0
    started = time.monotonic()
    with httpx.Client(
        base_url=fuzz_server.url,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    ) as client:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(body=bodies)
        def fuzz(body: bytes) -> None:
            nonlocal cases, http_seconds
            cases += 1
            sent = time.monotonic()
            response = client.post("/rpc", content=body)
            http_seconds += time.monotonic() - sent
            check(body, response)

        fuzz()
        # the server is still well after all that
        assert client.get("/healthz").status_code == 200
    seconds = time.monotonic() - started
    log = fuzz_server.log.read_text()
    print(f"fuzz: {cases} cases in {seconds:.1f} s ({http_seconds:.1f} s in HTTP), 0 failures")
    assert cases >= EXAMPLES
    assert "Traceback" not in log and "internal error" not in log
    # no body could forge or split a log line: every line is a logger's own
    forged = [line for line in log.splitlines() if not re.match(r"\[?\d{4}-\d\d-\d\d", line)]
    assert not forged, forged[:5]
