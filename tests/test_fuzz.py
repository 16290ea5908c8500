"""Hostile input: hypothesis-generated ``/rpc`` bodies against a real server.

Random JSON, mutated valid requests, deep nesting, huge numbers, wrong types, unicode,
invalid UTF-8, giant strings and duplicate keys. Every answer must be a valid JSON-RPC
response with a documented code, never a 5xx, never -32603 (an unhandled exception), and
the server log must hold no traceback afterwards.

One server on SQLite serves the whole run over one keep-alive connection: the envelope and
the params models are the same on both backends, so the fuzzer needs only one.
``LMRPC_FUZZ_EXAMPLES`` raises the number of cases (default 5,000, about 30 s here).

A second fuzzer (below) draws params from each method's own schema in the OpenRPC document
and checks the answers against the advertised results, errors and error data, on both
backends; ``LMRPC_FUZZ_SCHEMA_EXAMPLES`` sets its number of requests (default 300 per
backend, about 20 s each here). For a long run:
``LMRPC_FUZZ_EXAMPLES=100000 LMRPC_FUZZ_SCHEMA_EXAMPLES=20000 pytest tests/test_fuzz.py``.
"""

import json
import os
import re
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lmrpc.methods  # noqa: F401  (registers the methods)
from lmrpc import openrpc
from lmrpc.errors import INTERNAL_ERROR
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


# -- params drawn from each method's own schema ----------------------------------------------
#
# The OpenRPC document (lmrpc/openrpc.py) says what each method takes and returns. The
# fuzzer draws params from that schema (``from_schema`` below: hypothesis-jsonschema 0.23,
# the newest, breaks on current hypothesis internals), then pushes some of them to
# the schema's edges: its minimum and maximum and one past them, min and max lengths and
# one past, 0, -1, 2^31-1, 2^31, empty strings, NUL and other control characters, unknown
# keys, missing keys, wrong types, at any depth. Every answer must match the method's
# result schema, or carry one of the method's advertised error codes (never -32603) with
# the `data` shape of API.md §3. It runs on both backends (NUL and control characters reach
# each database's own string handling). ``LMRPC_FUZZ_SCHEMA_EXAMPLES`` sets the number of
# requests per backend (default 300; each request is a batch of up to 8 calls).

SCHEMA_EXAMPLES = int(os.environ.get("LMRPC_FUZZ_SCHEMA_EXAMPLES", "300"))
DOCUMENT = openrpc.document()
COMPONENTS: dict[str, Any] = DOCUMENT["components"]
SPECS: dict[str, dict[str, Any]] = {spec["name"]: spec for spec in DOCUMENT["methods"]}
_EDGES: list[Any] = [
    0, -1, 1, 2**31 - 1, 2**31, 2**63, -(2**31), 1.5, True, False, None, [], {}, "", " ",
    "\x00", "a\x00b", "\x1f", "\x7f", "\u200b", "\u202e", "\ufeff", "1", "x" * 256,
]  # fmt: skip


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = COMPONENTS["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


_WORDS = ["abaqus", "cae", "cluster-a", "lic1.example.org", "127.0.0.1", "1", "u", "n1", "hpc"]


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid by ``schema``, for the JSON Schema that pydantic writes for our params
    (types, anyOf, enum, bounds, lengths, arrays, objects, refs into the components)."""
    schema = _resolve(schema)
    if "anyOf" in schema:
        return st.one_of([from_schema(branch) for branch in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    match schema.get("type"):
        case "integer":
            return st.integers(schema.get("minimum"), schema.get("maximum"))
        case "boolean":
            return st.booleans()
        case "string" if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat())
        case "string":
            low, high = schema.get("minLength", 0), schema.get("maxLength", 255)
            words = [word for word in _WORDS if low <= len(word) <= high]
            return st.sampled_from(words) | st.text(min_size=low, max_size=min(high, 20))
        case "array":
            size = min(schema.get("maxItems", 3), 3)
            return st.lists(
                from_schema(schema["items"]), min_size=schema.get("minItems", 0), max_size=size
            )
        case "object":
            properties = schema.get("properties", {})
            required = set(schema.get("required", []))
            return st.fixed_dictionaries(
                {name: from_schema(properties[name]) for name in required},
                optional={
                    name: from_schema(inner)
                    for name, inner in properties.items()
                    if name not in required
                },
            )
    return st.none()


def _edges_of(schema: dict[str, Any], seen: set[str]) -> list[Any]:
    """The boundary values of a schema and of every schema inside it."""
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return []
        seen.add(schema["$ref"])
    schema = _resolve(schema)
    values: list[Any] = []
    if "minimum" in schema:
        values += [schema["minimum"], schema["minimum"] - 1]
    if "maximum" in schema:
        values += [schema["maximum"], schema["maximum"] + 1]
    if "minLength" in schema:
        values += ["a" * schema["minLength"], "a" * max(schema["minLength"] - 1, 0)]
    if "maxLength" in schema:
        longest = schema["maxLength"]
        values += ["a" * longest, "a" * (longest + 1), "é" * longest, "𝄞" * (longest + 1)]
    for choice in schema.get("enum", []):
        values += [choice, choice.upper(), f"{choice} ", f"{choice}\x00"]
    for inner in [*schema.get("anyOf", []), *schema.get("properties", {}).values()]:
        values += _edges_of(inner, seen)
    if "items" in schema:
        values += _edges_of(schema["items"], seen)
    return values


def params_schema(spec: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a method's params object, with the document's components."""
    return {
        "type": "object",
        "properties": {param["name"]: param["schema"] for param in spec["params"]},
        "required": [param["name"] for param in spec["params"] if param["required"]],
        "additionalProperties": False,
        "components": COMPONENTS,
    }


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside ``value`` (dict keys, list indexes), the root included."""
    found = [at]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*at, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*at, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def edgy_params(draw: st.DrawFn, method: str) -> Any:
    """Params valid by the method's schema, then some pushed to (or past) its edges."""
    params: Any = draw(from_schema(params_schema(SPECS[method])))
    edges = _EDGES + _edges_of({"properties": params_schema(SPECS[method])["properties"]}, set())
    for _ in range(draw(st.integers(0, 3))):
        places = _paths(params)
        path = draw(st.sampled_from(places))
        target = params
        for step in path:
            target = target[step]
        match draw(st.integers(0, 3)):
            case 0 | 1:
                params = _replace(params, path, draw(st.sampled_from(edges)))
            case 2 if isinstance(target, dict):
                name = draw(st.sampled_from(["zzz", "id", "Id", "", "__class__", "x" * 200]))
                params = _replace(params, path, {**target, name: draw(st.sampled_from(edges))})
            case 3 if isinstance(target, dict) and target:
                gone = draw(st.sampled_from(sorted(target)))
                params = _replace(params, path, {k: v for k, v in target.items() if k != gone})
    return params


@st.composite
def schema_calls(draw: st.DrawFn) -> list[tuple[str, Any]]:
    methods_drawn = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=8))
    return [(method, draw(edgy_params(method))) for method in methods_drawn]


def _error_data_problem(code: int, data: Any) -> str | None:
    """What is wrong with an error's ``data`` for its code (API.md §3); None when right."""
    match code:
        case -32602:
            ok = (
                isinstance(data, dict)
                and set(data) <= {"errors", "more"}
                and isinstance(data.get("errors"), list)
                and 1 <= len(data["errors"]) <= 20
                and all(
                    isinstance(e, dict)
                    and set(e) == {"field", "message"}
                    and isinstance(e["field"], str)
                    and len(e["field"]) <= 100
                    and isinstance(e["message"], str)
                    for e in data["errors"]
                )
                and (isinstance(data.get("more", 1), int) and data.get("more", 1) >= 1)
            )
        case -32004:
            ok = isinstance(data, dict) and (
                (set(data) == {"resource", "id"} and isinstance(data["resource"], str))
                or (set(data) == {"missing"} and isinstance(data["missing"], list))
            )
        case -32009 | -32600:
            ok = isinstance(data, dict) and isinstance(data.get("reason"), str)
        case -32010:
            ok = isinstance(data, dict) and set(data) == {
                "feature_id",
                "product_feature",
                "requested",
                "available",
            }
        case -32003:
            ok = isinstance(data, dict) and set(data) in ({"required"}, {"reason"})
        case -32012:
            ok = isinstance(data, dict) and isinstance(data.get("limit_bytes"), int)
        case _:
            ok = data is None
    return None if ok else f"data {data!r} does not fit code {code}"


def check_schema_answer(method: str, params: Any, answer: dict[str, Any]) -> None:
    """Checks one answer against the method's result schema or its advertised errors."""
    spec = SPECS[method]
    if "result" in answer:
        schema = {**spec["result"]["schema"], "components": COMPONENTS}
        jsonschema.validate(answer["result"], schema)
        return
    error = answer["error"]
    if not isinstance(params, dict | list):  # JSON-RPC: params are structured, or absent
        assert error["code"] == -32600, (method, params, error)
        return
    advertised = {entry["code"] for entry in spec["errors"]} - {INTERNAL_ERROR}
    assert error["code"] in advertised, (method, params, error)
    problem = _error_data_problem(error["code"], error.get("data"))
    assert problem is None, (method, params, problem)


def _seed(server: Server, token: str, database_url: str) -> None:
    """A few objects with small ids, so that drawn ids sometimes name real ones."""
    feature_in(database_url, 100, cluster="cluster-a", product="abaqus", name="cae")
    job = {"slurm_job_id": "1", "username": "u", "lead_host": "n1"}
    bookings = [{"product_feature": "abaqus.cae", "quantity": 1}]
    assert "result" in server.rpc(token, "jobs.create", {**job, "bookings": bookings})
    server.rpc(token, "clusters.report_status", {"interval": 60})


def test_params_drawn_from_each_methods_schema_get_documented_answers(
    server: Server, tokens: TokenFactory, database_url: str
) -> None:
    token = tokens.mint("admin", client_id="cluster-a", ttl=24 * 3600)
    _seed(server, token, database_url)
    requests_sent = calls_sent = 0
    started = time.monotonic()
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:

        @settings(
            max_examples=SCHEMA_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(calls=schema_calls())
        def fuzz(calls: list[tuple[str, Any]]) -> None:
            nonlocal requests_sent, calls_sent
            body = [
                {"jsonrpc": "2.0", "method": method, "params": params, "id": index}
                for index, (method, params) in enumerate(calls)
            ]
            response = client.post("/rpc", json=body)
            requests_sent += 1
            calls_sent += len(calls)
            assert response.status_code == 200, response.text[:300]
            answers = {answer["id"]: answer for answer in response.json()}
            assert sorted(answers) == list(range(len(calls)))
            for index, (method, params) in enumerate(calls):
                check_schema_answer(method, params, answers[index])

        fuzz()
        assert client.get("/healthz").status_code == 200
    seconds = time.monotonic() - started
    print(f"schema fuzz: {requests_sent} requests, {calls_sent} calls in {seconds:.1f} s")
    log = server.log.read_text()
    assert "Traceback" not in log
