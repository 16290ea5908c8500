"""API.md §1 end to end: a real ``lmrpc serve`` process, real signed tokens, real databases.

Every test runs on SQLite and on PostgreSQL. A server takes seconds to start, so the tests
that need no empty database share one server per backend for this module (``live``,
``limited``) and tell their own data apart by unique names; the tests that assert exact ids
use the per-test ``server`` fixture.
"""

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from lmrpc.client import request
from tests.conftest import BACKENDS, module_server
from tests.server import HTTP, Server
from tests.tokens import AUDIENCE, ISSUER, TokenFactory

JSON = "application/json"
TIMEOUT_S = 30
BODY_LIMIT = 2048
BATCH_LIMIT = 3


def post(
    server: Server,
    content: bytes | Iterator[bytes],
    token: str | None,
    *,
    content_type: str | None = JSON,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST raw bytes (or a chunked stream) to /rpc."""
    sent: dict[str, str] = {}
    if content_type is not None:
        sent["Content-Type"] = content_type
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    return HTTP.post(server.url + "/rpc", content=content, headers=sent, timeout=TIMEOUT_S)


def post_json(server: Server, document: Any, token: str) -> httpx.Response:
    return post(server, json.dumps(document).encode(), token)


def ok(id_: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": result, "id": id_}


def err(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": id_}


def invalid_request(reason: str, id_: Any = None) -> dict[str, Any]:
    return err(id_, -32600, "Invalid request", {"reason": reason})


def answered(response: httpx.Response) -> Any:
    """The JSON body of an HTTP 200 JSON-RPC answer."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    return response.json()


def product_names(server: Server, tokens: TokenFactory, prefix: str = "") -> list[str]:
    """The names of the products whose name starts with ``prefix``, sorted."""
    listed = answered(
        post_json(server, request("products.list", id_=1), tokens.mint("product:read"))
    )
    return sorted(p["name"] for p in listed["result"] if p["name"].startswith(prefix))


@pytest.fixture
def writer(tokens: TokenFactory) -> str:
    return tokens.mint("product:create", "product:read")


@pytest.fixture
def unique() -> str:
    """A prefix for the names this test creates on a shared server."""
    return f"t{uuid.uuid4().hex[:8]}-"


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tokens: TokenFactory
) -> Iterator[Server]:
    """One server with the default settings per backend, shared by this module's tests."""
    yield from module_server(request, tmp_path_factory, tokens, {})


@pytest.fixture(scope="module", params=BACKENDS)
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tokens: TokenFactory
) -> Iterator[Server]:
    """A server with a small body limit and a small batch limit, per backend."""
    extra = {"LMRPC_MAX_BODY_BYTES": str(BODY_LIMIT), "LMRPC_MAX_BATCH": str(BATCH_LIMIT)}
    yield from module_server(request, tmp_path_factory, tokens, extra)


# --- calls, batches, notifications ---------------------------------------------------------


def test_a_single_call_is_answered_with_its_result(server: Server, writer: str) -> None:
    response = post_json(server, request("products.create", {"name": "abaqus"}, 1), writer)
    assert answered(response) == ok(1, {"id": 1, "name": "abaqus"})
    response = post_json(server, request("products.get", {"id": 1}, "get-1"), writer)
    assert answered(response) == ok("get-1", {"id": 1, "name": "abaqus"})


def test_a_batch_is_answered_in_request_order_mixing_results_and_errors(
    server: Server, tokens: TokenFactory, writer: str
) -> None:
    answered(post_json(server, request("products.create", {"name": "abaqus"}, 1), writer))
    batch = [
        request("products.get", {"id": 1}, "first"),
        request("no.such.method", {}, 2),
        7,
        request("products.create", {"name": "fluent"}),  # notification: runs, no answer
        request("products.get", {"id": 999}, 3),
        request("products.get", [1], 4),
        {"jsonrpc": "2.0", "method": "products.get", "params": {"id": 1}, "id": 5.5},
        request("products.create", {"name": "abaqus"}, 6),
        request("products.get", {"id": 1}, 0),
    ]
    body = answered(post_json(server, batch, writer))
    assert isinstance(body, list)
    assert [entry["id"] for entry in body] == ["first", 2, None, 3, 4, None, 6, 0]
    assert body[0] == ok("first", {"id": 1, "name": "abaqus"})
    assert body[1] == err(2, -32601, "Method not found: no.such.method")
    assert body[2] == invalid_request("a request must be a JSON object")
    assert body[3] == err(3, -32004, "product not found", {"resource": "product", "id": 999})
    assert body[4] == err(
        4,
        -32602,
        "Invalid params",
        {"errors": [{"field": "params", "message": "params must be given by name"}]},
    )
    assert body[5] == invalid_request("id must be a string, an integer or null")
    assert body[6]["id"] == 6
    assert body[6]["error"]["code"] == -32009  # the name is taken
    assert body[7] == ok(0, {"id": 1, "name": "abaqus"})
    assert product_names(server, tokens) == ["abaqus", "fluent"]


def test_a_batch_of_many_calls_keeps_their_order(live: Server, writer: str, unique: str) -> None:
    batch = [request("products.create", {"name": f"{unique}{i:03}"}, f"c{i}") for i in range(60)]
    body = answered(post_json(live, batch, writer))
    assert [entry["id"] for entry in body] == [f"c{i}" for i in range(60)]
    assert [entry["result"]["name"] for entry in body] == [f"{unique}{i:03}" for i in range(60)]
    assert len({entry["result"]["id"] for entry in body}) == 60


def test_a_single_notification_runs_and_gets_204_without_body(
    live: Server, tokens: TokenFactory, writer: str, unique: str
) -> None:
    response = post_json(live, request("products.create", {"name": f"{unique}abaqus"}), writer)
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert product_names(live, tokens, unique) == [f"{unique}abaqus"]
    # a failing notification is not answered either
    response = post_json(live, request("products.create", {"name": f"{unique}abaqus"}), writer)
    assert (response.status_code, response.content) == (204, b"")
    response = post_json(live, request("no.such.method"), writer)
    assert (response.status_code, response.content) == (204, b"")
    response = post_json(live, request("products.create", ["positional"]), writer)
    assert (response.status_code, response.content) == (204, b"")


def test_a_batch_of_only_notifications_gets_204(
    live: Server, tokens: TokenFactory, writer: str, unique: str
) -> None:
    batch = [
        request("products.create", {"name": f"{unique}abaqus"}),
        request("products.create", {"name": f"{unique}fluent"}),
        request("no.such.method", {}),
        request("products.get", [1]),
    ]
    response = post_json(live, batch, writer)
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert product_names(live, tokens, unique) == [f"{unique}abaqus", f"{unique}fluent"]


def test_a_mixed_batch_answers_only_the_calls_with_id(
    live: Server, tokens: TokenFactory, writer: str, unique: str
) -> None:
    batch = [
        request("products.create", {"name": f"{unique}abaqus"}),
        request("products.create", {"name": f"{unique}fluent"}, "f"),
        request("no.such.method"),
        request("products.create", {"name": f"{unique}ansys"}) | {"id": None},  # null id: a call
    ]
    body = answered(post_json(live, batch, writer))
    assert [entry["id"] for entry in body] == ["f", None]
    assert body[0]["result"]["name"] == f"{unique}fluent"
    assert body[1]["result"]["name"] == f"{unique}ansys"
    assert product_names(live, tokens, unique) == [
        f"{unique}abaqus",
        f"{unique}ansys",
        f"{unique}fluent",
    ]


# --- malformed bodies ----------------------------------------------------------------------


NOT_JSON = [
    b"{",
    b"",
    b"not json",
    b'{"jsonrpc": "2.0", "method": "products.list", "id": 1,}',
    b'[{"jsonrpc": "2.0", "method": "products.list", "id": 1}',
    b'{"jsonrpc":"2.0","method":"products.list","id":1}{"jsonrpc":"2.0"}',
    b'{"jsonrpc":"2.0","method":"products.\xff","id":1}',  # invalid UTF-8
    b'{"jsonrpc":"2.0","method":"products.list","id":"\xc3"}',  # truncated UTF-8
    b"\xef\xbb\xbf{}",  # byte order mark
    json.dumps({"jsonrpc": "2.0", "method": "products.list", "id": 1}).encode("utf-16"),
    b'{"jsonrpc":"2.0","method":"products.get","params":{"id":NaN},"id":1}',
    b'{"jsonrpc":"2.0","method":"products.list","id":1,"id":2}',
    b'{"jsonrpc":"2.0","method":"products.list","id":"\\ud800"}',
    b"[" * 100_000 + b"]" * 100_000,
]


def test_a_body_that_is_not_json_is_a_parse_error_with_null_id(live: Server, writer: str) -> None:
    for content in NOT_JSON:
        body = answered(post(live, content, writer))
        assert set(body) == {"jsonrpc", "error", "id"}, content[:80]
        assert body["jsonrpc"] == "2.0"
        assert body["id"] is None
        assert body["error"]["code"] == -32700, content[:80]
        assert body["error"]["message"].startswith("Parse error")
        assert "data" not in body["error"]
        assert "Traceback" not in body["error"]["message"]
    # and the server still answers
    assert (
        answered(post_json(live, request("products.get", {"id": 2**31 - 1}, 1), writer))["id"] == 1
    )


def test_requests_that_are_not_json_rpc_are_invalid_requests_with_null_id(
    live: Server, writer: str
) -> None:
    not_an_object = "a request must be a JSON object"
    not_2_0 = 'jsonrpc must be "2.0"'
    no_method = "method must be a string"
    bad_id = "id must be a string, an integer or null"
    cases: list[tuple[Any, str]] = [
        (1, not_an_object),
        ("products.list", not_an_object),
        (None, not_an_object),
        (True, not_an_object),
        ({"method": "products.list"}, not_2_0),
        ({"jsonrpc": "1.0", "method": "products.list"}, not_2_0),
        ({"jsonrpc": 2, "method": "products.list"}, not_2_0),
        ({"jsonrpc": "2.0"}, no_method),
        ({"jsonrpc": "2.0", "method": 42}, no_method),
        ({"jsonrpc": "2.0", "method": None}, no_method),
        ({"jsonrpc": "2.0", "method": "m", "params": 3}, "params must be an object or an array"),
        ({"jsonrpc": "2.0", "method": "m", "extra": 1}, "unknown members: extra"),
    ]
    for id_ in (1.5, True, [1], {"n": 1}, 2**63, "x" * 256):
        cases.append(({"jsonrpc": "2.0", "method": "products.list", "id": id_}, bad_id))
        cases.append(({"method": 1, "id": id_}, bad_id))
    for document, reason in cases:
        response = post_json(live, document, writer)
        assert answered(response) == invalid_request(reason), document


def test_an_invalid_request_with_a_readable_id_is_answered_with_that_id(
    live: Server, writer: str
) -> None:
    """The id is echoed whenever it could be read, so a client can match the answer."""
    document = {"jsonrpc": "1.0", "method": "products.list", "id": 9}
    assert answered(post_json(live, document, writer)) == invalid_request(
        'jsonrpc must be "2.0"', 9
    )
    document = {"jsonrpc": "2.0", "method": ["m"], "id": "x"}
    assert answered(post_json(live, document, writer)) == invalid_request(
        "method must be a string", "x"
    )


def test_an_empty_batch_is_refused_with_one_invalid_request(live: Server, writer: str) -> None:
    assert answered(post(live, b"[]", writer)) == invalid_request("empty batch")
    assert answered(post(live, b" [ ]\n", writer)) == invalid_request("empty batch")


def test_a_batch_over_the_default_limit_is_refused_whole(
    live: Server, tokens: TokenFactory, writer: str, unique: str
) -> None:
    batch = [request("products.create", {"name": f"{unique}{i}"}, i) for i in range(1001)]
    body = answered(post_json(live, batch, writer))
    assert body == invalid_request("batch of 1001 calls exceeds 1000")
    assert product_names(live, tokens, unique) == []
    body = answered(post_json(live, batch[:1000], writer))
    assert [entry["id"] for entry in body] == list(range(1000))
    assert len(product_names(live, tokens, unique)) == 1000


def test_positional_params_are_invalid_params(live: Server, writer: str) -> None:
    body = answered(post_json(live, request("products.create", ["abaqus"], 1), writer))
    assert body == err(
        1,
        -32602,
        "Invalid params",
        {"errors": [{"field": "params", "message": "params must be given by name"}]},
    )


def test_an_unknown_method_is_method_not_found(live: Server, writer: str) -> None:
    body = answered(post_json(live, request("products.explode", {}, 1), writer))
    assert body == err(1, -32601, "Method not found: products.explode")


# --- transport limits ----------------------------------------------------------------------


def padded(document: Any, size: int) -> bytes:
    """``document`` as JSON followed by whitespace up to exactly ``size`` bytes."""
    raw = json.dumps(document).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def chunks(raw: bytes, size: int = 300) -> Iterator[bytes]:
    """A generator body: httpx sends it chunked, without Content-Length."""
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


def test_the_body_limit_answers_413_with_invalid_request(
    limited: Server, tokens: TokenFactory, writer: str, unique: str
) -> None:
    too_large = invalid_request(f"body exceeds {BODY_LIMIT} bytes")
    fits = padded(request("products.create", {"name": f"{unique}abaqus"}, 1), BODY_LIMIT)
    assert answered(post(limited, fits, writer))["result"]["name"] == f"{unique}abaqus"

    over = padded(request("products.create", {"name": f"{unique}fluent"}, 2), BODY_LIMIT + 1)
    response = post(limited, over, writer)
    assert response.request.headers["content-length"] == str(BODY_LIMIT + 1)
    assert response.status_code == 413
    assert response.headers["content-type"] == JSON
    assert response.json() == too_large

    streamed = padded(request("products.create", {"name": f"{unique}fluent"}, 2), 20 * BODY_LIMIT)
    response = post(limited, chunks(streamed), writer)
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.headers["content-type"] == JSON
    assert response.json() == too_large

    just_over = padded(request("products.create", {"name": f"{unique}fluent"}, 2), BODY_LIMIT + 1)
    response = post(limited, chunks(just_over), writer)
    assert (response.status_code, response.json()) == (413, too_large)

    fits_streamed = padded(request("products.create", {"name": f"{unique}ansys"}, 3), BODY_LIMIT)
    response = post(limited, chunks(fits_streamed), writer)
    assert answered(response)["result"]["name"] == f"{unique}ansys"
    assert product_names(limited, tokens, unique) == [f"{unique}abaqus", f"{unique}ansys"]


def test_the_batch_limit_is_configurable(
    limited: Server, tokens: TokenFactory, writer: str, unique: str
) -> None:
    batch = [
        request("products.create", {"name": f"{unique}{i}"}, i) for i in range(BATCH_LIMIT + 1)
    ]
    body = answered(post_json(limited, batch, writer))
    assert body == invalid_request(f"batch of {BATCH_LIMIT + 1} calls exceeds {BATCH_LIMIT}")
    assert product_names(limited, tokens, unique) == []
    body = answered(post_json(limited, batch[:BATCH_LIMIT], writer))
    assert [entry["result"]["name"] for entry in body] == [f"{unique}{i}" for i in range(3)]


def test_a_body_that_is_not_declared_json_gets_415(
    live: Server, tokens: TokenFactory, writer: str, unique: str
) -> None:
    raw = json.dumps(request("products.create", {"name": f"{unique}abaqus"}, 1)).encode()
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded", "text/json"):
        response = post(live, raw, writer, content_type=content_type)
        assert response.status_code == 415, content_type
        assert response.headers["content-type"] == JSON
        assert response.json() == invalid_request("Content-Type must be application/json")
    assert product_names(live, tokens, unique) == []


def test_json_with_a_charset_parameter_is_json(live: Server, writer: str) -> None:
    raw = json.dumps(request("products.get", {"id": 2**31 - 1}, 1)).encode()
    response = post(live, raw, writer, content_type="application/json; charset=utf-8")
    assert answered(response)["error"]["code"] == -32004


# --- authentication ------------------------------------------------------------------------


def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "mallory",
        "exp": now + 600,
        "permissions": ["license-manager:admin"],
        "azp": "cluster-a",
    }
    claims.update(overrides)
    return claims


def bad_tokens(tokens: TokenFactory) -> dict[str, tuple[dict[str, str], str]]:
    """name → (request headers, a word the -32001 reason contains)."""
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger", "alg": "RS256"})
    assert tokens.key.kid is not None
    impostor = RSAKey.generate_key(2048, parameters={"kid": tokens.key.kid, "alg": "RS256"})
    public = json.dumps(tokens.key.as_dict(private=False)).encode()
    hmac_with_public_key = jwt.encode(
        {"alg": "HS256", "kid": tokens.key.kid}, _claims(), OctKey.import_key(public)
    )
    unsigned = f"{_b64({'alg': 'none', 'kid': tokens.key.kid})}.{_b64(_claims())}."
    good = tokens.mint("admin")

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    return {
        "no token": ({}, "missing"),
        "bearer without token": ({"Authorization": "Bearer"}, "missing"),
        "basic scheme": ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing"),
        "token without scheme": ({"Authorization": good}, "missing"),
        "malformed": (bearer("not-a-jwt"), "malformed"),
        "malformed three parts": (bearer("abc.def.ghi"), "malformed"),
        "truncated signature": (bearer(good[:-10]), "signature"),
        "expired": (bearer(tokens.mint("admin", ttl=-120)), "expired"),
        "no exp": (bearer(tokens.mint("admin", exp=None)), "exp"),
        "signed by an unknown key": (bearer(tokens.mint("admin", key=stranger)), "key"),
        "bad signature": (
            bearer(tokens.mint("admin", key=impostor, header={"kid": tokens.key.kid})),
            "signature",
        ),
        "wrong iss": (bearer(tokens.mint("admin", iss="https://evil.test/")), "iss"),
        "wrong aud": (bearer(tokens.mint("admin", aud="someone-else")), "aud"),
        "no aud": (bearer(tokens.mint("admin", aud=None)), "aud"),
        "alg none": (bearer(unsigned), "algorithm"),
        "HMAC with the public key": (bearer(hmac_with_public_key), "algorithm"),
    }


def test_every_bad_token_gets_401_and_nothing_runs(
    live: Server, tokens: TokenFactory, unique: str
) -> None:
    create = json.dumps(request("products.create", {"name": f"{unique}abaqus"}, 1)).encode()
    notify = json.dumps(request("products.create", {"name": f"{unique}fluent"})).encode()
    for name, (headers, reason_word) in bad_tokens(tokens).items():
        for raw in (create, notify):
            response = HTTP.post(
                live.url + "/rpc",
                content=raw,
                headers={"Content-Type": JSON, **headers},
                timeout=TIMEOUT_S,
            )
            assert response.status_code == 401, name
            challenge = 'Bearer error="invalid_token"' if reason_word != "missing" else "Bearer"
            assert response.headers["www-authenticate"] == challenge, name
            assert response.headers["content-type"] == JSON, name
            body = response.json()
            reason = body["error"]["data"]["reason"]
            assert body == err(None, -32001, "Unauthenticated", {"reason": reason}), name
            assert reason_word in reason, (name, reason)
    assert product_names(live, tokens, unique) == []


def test_a_token_within_the_leeway_is_accepted(live: Server, tokens: TokenFactory) -> None:
    just_expired = tokens.mint("product:read", ttl=-5)
    body = answered(post_json(live, request("products.get", {"id": 2**31 - 1}, 1), just_expired))
    assert body["error"]["code"] == -32004


# --- health --------------------------------------------------------------------------------


def test_healthz_answers_ok_without_a_token(live: Server) -> None:
    response = HTTP.get(live.url + "/healthz", timeout=TIMEOUT_S)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert response.json() == {"status": "ok"}
