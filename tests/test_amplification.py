"""A small request never buys a huge answer (issue 14 item 4): error lists are capped, and a
params object or request object with very many names is refused without validating each."""

import json
import time
from typing import Any

import pytest

import lmrpc.methods  # noqa: F401  (registers the methods)
from lmrpc import jsonrpc
from lmrpc.dispatch import validate_params
from lmrpc.errors import INVALID_PARAMS, MAX_LISTED, MAX_NAME_CHARS, RpcError
from lmrpc.registry import METHODS
from tests.server import HTTP, Server
from tests.tokens import TokenFactory

MANY = 380_000
GENEROUS_S = 20  # "does not hang" only: parsing 3.7 MB of JSON alone takes about a second


def many_names(count: int) -> dict[str, int]:
    """``count`` distinct short names: hexadecimal numbers."""
    return {f"{i:x}": 1 for i in range(count)}


def refusal(model: Any, params: Any) -> RpcError:
    with pytest.raises(RpcError) as caught:
        validate_params(model, params)
    assert caught.value.code == INVALID_PARAMS
    return caught.value


def test_unknown_params_beyond_the_cap_are_counted_not_listed() -> None:
    error = refusal(METHODS["rpc.discover"].params, many_names(MANY))
    assert len(error.data["errors"]) == MAX_LISTED
    assert error.data["more"] == MANY - MAX_LISTED
    assert error.data["errors"][0] == {"field": "0", "message": "Extra inputs are not permitted"}
    assert len(json.dumps(error.to_json())) < 4096


def test_long_field_names_are_cut() -> None:
    name = "x" * 10_000
    error = refusal(METHODS["products.get"].params, {"id": 1, name: 1})
    [entry] = error.data["errors"]
    assert entry["field"] == name[:MAX_NAME_CHARS]
    assert "more" not in error.data


def test_more_names_than_fields_is_refused_before_validation() -> None:
    """Two names for a one-field model: refused for the unknown name even though the known
    one is also invalid; pydantic would have reported both."""
    error = refusal(METHODS["products.get"].params, {"id": "not a number", "extra": 1})
    assert error.data == {
        "errors": [{"field": "extra", "message": "Extra inputs are not permitted"}]
    }


def test_many_validation_errors_of_nested_params_are_capped() -> None:
    bookings = [{"product_feature": "bad", "quantity": 0} for _ in range(500)]
    params = {"slurm_job_id": "1", "username": "u", "lead_host": "h", "bookings": bookings}
    error = refusal(METHODS["jobs.create"].params, params)
    assert len(error.data["errors"]) == MAX_LISTED
    assert error.data["more"] == 2 * len(bookings) - MAX_LISTED


def test_few_errors_are_listed_whole_without_more() -> None:
    error = refusal(METHODS["products.get"].params, {"id": 0})
    assert [e["field"] for e in error.data["errors"]] == ["id"]
    assert "more" not in error.data


def test_valid_params_still_pass() -> None:
    assert validate_params(METHODS["products.get"].params, {"id": 3}).model_dump() == {"id": 3}


def test_a_request_with_many_unknown_members_is_refused_with_a_short_reason() -> None:
    request = {"jsonrpc": "2.0", "method": "m", "id": 7, **many_names(MANY)}
    is_batch, [entry] = jsonrpc.decode(json.dumps(request).encode(), 10)
    assert not is_batch
    assert isinstance(entry, jsonrpc.BadCall)
    assert entry.id == 7
    listed = ", ".join(f"{i:x}" for i in range(MAX_LISTED))
    assert entry.reason == f"unknown members: {listed} (and {MANY - MAX_LISTED} more)"


def test_unknown_member_names_are_cut() -> None:
    name = "m" * 5000
    entry = jsonrpc._entry({"jsonrpc": "2.0", "method": "m", name: 1})
    assert isinstance(entry, jsonrpc.BadCall)
    assert entry.reason == f"unknown members: {name[:MAX_NAME_CHARS]}"


@pytest.mark.parametrize("shared_database_url", ["sqlite"], indirect=True)  # storage unused
def test_the_huge_request_gets_a_small_error_and_the_server_keeps_serving(
    shared_server: Server, tokens: TokenFactory
) -> None:
    server = shared_server
    token = tokens.mint(client_id="cluster-a")  # any valid token may call rpc.discover
    request = {"jsonrpc": "2.0", "method": "rpc.discover", "id": 1, "params": many_names(MANY)}
    body = json.dumps(request, separators=(",", ":")).encode()
    assert 3_600_000 < len(body) < 4 * 1024 * 1024
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.monotonic()
    response = HTTP.post(server.url + "/rpc", content=body, headers=headers, timeout=60)
    assert time.monotonic() - started < GENEROUS_S
    assert response.status_code == 200
    assert len(response.content) < 4096
    error = response.json()["error"]
    assert error["code"] == INVALID_PARAMS
    assert error["data"]["more"] == MANY - MAX_LISTED
    after = server.rpc(token, "rpc.discover")
    assert after["result"]["openrpc"].startswith("1.")
