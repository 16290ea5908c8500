"""Runs decoded calls: method lookup, permission, cluster identity, params, handler.

The order of checks is API.md §3's. Calls of a batch run concurrently in one nursery and
their responses keep the order of the requests.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

import trio
from pydantic import BaseModel, ValidationError

from lmrpc import jsonrpc
from lmrpc.errors import (
    FORBIDDEN,
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    NO_CLUSTER,
    RpcError,
    from_domain,
    invalid_params,
    invalid_params_of,
)
from lmrpc.identity import PREFIX, Identity
from lmrpc.registry import METHODS, CallContext
from storage.errors import DomainError

log = logging.getLogger("lmrpc.dispatch")

ContextFactory = Callable[[Identity], CallContext]


EXTRA_INPUT = "Extra inputs are not permitted"  # pydantic's words for an unknown name


def validate_params(model: type[BaseModel], params: Any) -> BaseModel:
    """Check params against ``model``; every problem becomes a -32602 ``errors`` entry.

    Params with more names than the model has fields are refused before pydantic runs:
    at least one name is unknown, and validating 380,000 of them blocked the event loop
    for seconds."""
    if isinstance(params, list):
        raise invalid_params("params", "params must be given by name")
    fields = model.model_fields
    if params is not None and len(params) > len(fields):
        unknown = (name for name in params if name not in fields)
        raise invalid_params_of((name, EXTRA_INPUT) for name in unknown)
    try:
        return model.model_validate(params if params is not None else {})
    except ValidationError as invalid:
        raise invalid_params_of(
            (".".join(str(part) for part in e["loc"]) or "params", e["msg"])
            for e in invalid.errors(include_url=False, include_context=False, include_input=False)
        ) from None


async def run_call(call: jsonrpc.Call, identity: Identity, context_for: ContextFactory) -> Any:
    """The result of one call, or raises RpcError."""
    method = METHODS.get(call.method)
    if method is None:
        raise RpcError(METHOD_NOT_FOUND, message=f"Method not found: {call.method[:100]}")
    if method.permission is not None and not identity.allows(method.permission):
        raise RpcError(FORBIDDEN, {"required": PREFIX + method.permission})
    if method.cluster and not identity.cluster_client_id:
        raise RpcError(NO_CLUSTER)
    params = validate_params(method.params, call.params)
    try:
        return await method.handler(context_for(identity), params)
    except DomainError as error:
        raise from_domain(error) from None


Observer = Callable[[jsonrpc.Call, int | None, float], None]  # call, error code, seconds


def _ignore(call: jsonrpc.Call, code: int | None, seconds: float) -> None:
    pass


async def respond(
    call: jsonrpc.Call,
    identity: Identity,
    context_for: ContextFactory,
    observe: Observer = _ignore,
) -> dict[str, Any]:
    """The response object for one call; never raises for a failing call. ``observe``
    hears of every call: its error code (None when it succeeded) and duration."""
    started = time.perf_counter()
    try:
        response = jsonrpc.result(call.id, await run_call(call, identity, context_for))
        code = None
    except RpcError as error:
        response, code = jsonrpc.error(call.id, error), error.code
    except Exception:
        log.exception("internal error in %s", call.method)
        response, code = jsonrpc.error(call.id, RpcError(INTERNAL_ERROR)), INTERNAL_ERROR
    observe(call, code, time.perf_counter() - started)
    return response


async def dispatch(
    body: bytes,
    identity: Identity,
    context_for: ContextFactory,
    max_batch: int,
    observe: Observer = _ignore,
) -> bytes | None:
    """The response body for a request body, or None when there is nothing to answer."""
    try:
        is_batch, entries = jsonrpc.decode(body, max_batch)
    except RpcError as error:
        return jsonrpc.encode(jsonrpc.error(None, error))
    if not is_batch:
        [entry] = entries
        if isinstance(entry, jsonrpc.BadCall):
            return jsonrpc.encode(jsonrpc.bad_call_response(entry))
        response = await respond(entry, identity, context_for, observe)
        return None if entry.is_notification else jsonrpc.encode(response)
    responses: list[dict[str, Any] | None] = [None] * len(entries)

    async def answer(index: int, entry: jsonrpc.Call) -> None:
        response = await respond(entry, identity, context_for, observe)
        if not entry.is_notification:
            responses[index] = response

    async with trio.open_nursery() as nursery:
        for index, entry in enumerate(entries):
            if isinstance(entry, jsonrpc.BadCall):
                responses[index] = jsonrpc.bad_call_response(entry)
            else:
                nursery.start_soon(answer, index, entry)
    answered = [response for response in responses if response is not None]
    return jsonrpc.encode(answered) if answered else None
