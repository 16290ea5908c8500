"""Runs decoded calls: method lookup, permission, cluster identity, params, handler.

The order of checks is API.md §3's. Calls of a batch run concurrently in one nursery and
their responses keep the order of the requests. The calls of a batch share a few storage
slots, and the calls of a request one response budget.
"""

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import cache
from typing import Any

import trio
from pydantic import BaseModel, ValidationError

from lmrpc import jsonrpc
from lmrpc.budget import ResponseBudget, framing
from lmrpc.errors import (
    FORBIDDEN,
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    NO_CLUSTER,
    RESPONSE_TOO_LARGE,
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

# Storage reads, and writes, that one batch may have queued or running at a time.
SLOTS_PER_BATCH = 2


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


class _BatchShare:
    """The storage slots of one batch: its calls share SLOTS_PER_BATCH read slots and as
    many write slots, so a batch queues at most that many transactions ahead of other
    callers. Once an answer did not fit the response budget, reads not yet begun are
    refused with -32012 instead of running: nothing of theirs could be sent anyway.
    Writes still run: their answers are small, and a change is worth its answer."""

    def __init__(self, budget: ResponseBudget, limit_bytes: int) -> None:
        self._reads = trio.CapacityLimiter(SLOTS_PER_BATCH)
        self._writes = trio.CapacityLimiter(SLOTS_PER_BATCH)
        self._budget = budget
        self._limit_bytes = limit_bytes

    @asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        async with self._reads:
            if self._budget.spent:
                raise too_large(self._limit_bytes)
            yield

    @asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        async with self._writes:
            yield


def too_large(limit_bytes: int) -> RpcError:
    return RpcError(RESPONSE_TOO_LARGE, {"limit_bytes": limit_bytes})


@cache
def _too_large_answer(limit_bytes: int) -> Callable[[Any], bytes]:
    """The encoded -32012 response for an id (one encoder per budget: it is a setting)."""
    return jsonrpc.error_encoder(too_large(limit_bytes))


async def dispatch(
    body: bytes,
    identity: Identity,
    context_for: ContextFactory,
    max_batch: int,
    observe: Observer = _ignore,
    *,
    max_response_bytes: int,
) -> bytes | None:
    """The response body for a request body, or None when there is nothing to answer.

    The response stays within ``max_response_bytes`` (lmrpc/budget.py): a call whose answer
    does not fit in what is left is answered -32012. A request whose -32012 answers alone
    would not fit (a batch of very long ids) is refused whole before any call runs.
    """
    try:
        is_batch, entries = jsonrpc.decode(body, max_batch)
    except RpcError as error:
        return jsonrpc.encode(jsonrpc.error(None, error))
    fallback_for = _too_large_answer(max_response_bytes)
    fallbacks = {
        index: fallback_for(entry.id)
        for index, entry in enumerate(entries)
        if isinstance(entry, jsonrpc.BadCall) or not entry.is_notification
    }
    set_aside = sum(map(len, fallbacks.values())) + framing(len(fallbacks), is_batch)
    budget = ResponseBudget(max_response_bytes, set_aside)
    if not budget.possible:
        return jsonrpc.encode(jsonrpc.error(None, too_large(max_response_bytes)))
    shared: list[CallContext] = []  # the batch's one context, made when a call needs it

    def shared_context(who: Identity) -> CallContext:
        if not shared:
            share = _BatchShare(budget, max_response_bytes)
            context = context_for(who)
            storage = context.storage.gated(share.read, share.write)
            shared.append(replace(context, storage=storage))
        return shared[0]

    # A single call runs one transaction at a time: only a batch needs to share.
    call_context = shared_context if len(entries) > 1 else context_for
    answers: dict[int, bytes] = {}

    async def answer(index: int, entry: jsonrpc.Call | jsonrpc.BadCall) -> None:
        if isinstance(entry, jsonrpc.BadCall):
            answers[index] = budget.fit(
                jsonrpc.encode(jsonrpc.bad_call_response(entry)), fallbacks[index]
            )
            return
        heard: list[tuple[int | None, float]] = []  # observed once we know what is sent
        response = await respond(
            entry, identity, call_context, lambda _, code, seconds: heard.append((code, seconds))
        )
        [(code, seconds)] = heard
        if index in fallbacks:
            encoded = jsonrpc.encode(response)
            answers[index] = budget.fit(encoded, fallbacks[index])
            if answers[index] is not encoded:
                code = RESPONSE_TOO_LARGE
        observe(entry, code, seconds)

    if len(entries) == 1:
        await answer(0, entries[0])
    else:
        async with trio.open_nursery() as nursery:
            for index, entry in enumerate(entries):
                nursery.start_soon(answer, index, entry)
    if not answers:
        return None
    if not is_batch:
        return answers[0]
    return b"[" + b",".join(answers[index] for index in sorted(answers)) + b"]"
