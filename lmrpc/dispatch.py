"""Runs decoded calls: method lookup, permission, cluster identity, params, handler.

The order of checks is API.md §3's. Calls of a batch run concurrently in one nursery and
their responses keep the order of the requests. The calls of a batch share a few storage
slots, and the calls of a request one response budget.
"""

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
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
from lmrpc.registry import METHODS, CallContext, Method
from storage.errors import DomainError

log = logging.getLogger("lmrpc.dispatch")

ContextFactory = Callable[[Identity], CallContext]

# Storage reads, and writes, that one batch may have queued or running at a time.
SLOTS_PER_BATCH = 2


EXTRA_INPUT = "Extra inputs are not permitted"  # pydantic's words for an unknown name


@cache
def field_names(model: type[BaseModel]) -> frozenset[str]:
    """The model's field names (``model_fields`` is a property that costs more per call than
    validating the params)."""
    return frozenset(model.model_fields)


def validate_params(model: type[BaseModel], params: Any) -> BaseModel:
    """Check params against ``model``; every problem becomes a -32602 ``errors`` entry.

    Params with more names than the model has fields are refused before pydantic runs:
    at least one name is unknown, and validating 380,000 of them blocked the event loop
    for seconds."""
    if isinstance(params, list):
        raise invalid_params("params", "params must be given by name")
    fields = field_names(model)
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


def checked(call: jsonrpc.Call, identity: Identity) -> tuple[Method, BaseModel]:
    """The call's method and params once it may run, or raises RpcError."""
    method = METHODS.get(call.method)
    if method is None:
        raise RpcError(METHOD_NOT_FOUND, message=f"Method not found: {call.method[:100]}")
    if method.permission is not None and not identity.allows(method.permission):
        raise RpcError(FORBIDDEN, {"required": PREFIX + method.permission})
    if method.cluster and not identity.cluster_client_id:
        raise RpcError(NO_CLUSTER)
    return method, validate_params(method.params, call.params)


async def run_call(call: jsonrpc.Call, identity: Identity, context_for: ContextFactory) -> Any:
    """The result of one call, or raises RpcError."""
    method, params = checked(call, identity)
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
        outcome = await run_call(call, identity, context_for)
    except Exception as error:
        outcome = error
    response, code = response_of(call, outcome)
    observe(call, code, time.perf_counter() - started)
    return response


def response_of(call: jsonrpc.Call, outcome: Any) -> tuple[dict[str, Any], int | None]:
    """The response object for a call's result or the exception it ended with, and the
    error code (None for a result)."""
    if isinstance(outcome, DomainError):
        outcome = from_domain(outcome)
    if isinstance(outcome, RpcError):
        return jsonrpc.error(call.id, outcome), outcome.code
    if isinstance(outcome, Exception):
        log.error("internal error in %s", call.method, exc_info=outcome)
        return jsonrpc.error(call.id, RpcError(INTERNAL_ERROR)), INTERNAL_ERROR
    return jsonrpc.result(call.id, outcome), None


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


@dataclass
class _Together:
    """A batch's calls that run together: by method, (index, call, params) in order."""

    calls: dict[Method, list[tuple[int, jsonrpc.Call, BaseModel]]] = field(default_factory=dict)
    indexes: set[int] = field(default_factory=set)


def _together(entries: list[jsonrpc.Call | jsonrpc.BadCall], identity: Identity) -> _Together:
    """The calls of methods with a batch handler that may run (checked as ``run_call``
    does); a call refused by the checks is answered on its own, as any other call."""
    together = _Together()
    for index, entry in enumerate(entries):
        method = METHODS.get(entry.method) if isinstance(entry, jsonrpc.Call) else None
        if method is None or method.batch is None:
            continue
        assert isinstance(entry, jsonrpc.Call)
        try:
            _, params = checked(entry, identity)
        except RpcError:
            continue
        together.calls.setdefault(method, []).append((index, entry, params))
        together.indexes.add(index)
    return together


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

    def record(
        index: int, entry: jsonrpc.Call, response: dict[str, Any], code: int | None, seconds: float
    ) -> None:
        """Keep a call's answer if it fits the budget, and let ``observe`` hear what is sent."""
        if index in fallbacks:
            encoded = jsonrpc.encode(response)
            answers[index] = budget.fit(encoded, fallbacks[index])
            if answers[index] is not encoded:
                code = RESPONSE_TOO_LARGE
        observe(entry, code, seconds)

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
        record(index, entry, response, code, seconds)

    async def answer_together(method: Method, calls: list[tuple[int, jsonrpc.Call, Any]]) -> None:
        """Run a batch's calls of one method with a batch handler as one call of it."""
        assert method.batch is not None
        started = time.perf_counter()
        try:
            outcomes = await method.batch(call_context(identity), [p for _, _, p in calls])
        except Exception as error:  # the handler itself failed: every call with it
            outcomes = [error] * len(calls)
        seconds = time.perf_counter() - started
        for (index, entry, _), outcome in zip(calls, outcomes, strict=True):
            response, code = response_of(entry, outcome)
            record(index, entry, response, code, seconds)

    if len(entries) == 1:
        await answer(0, entries[0])
    else:
        together = _together(entries, identity)
        async with trio.open_nursery() as nursery:
            for index, entry in enumerate(entries):
                if index not in together.indexes:
                    nursery.start_soon(answer, index, entry)
            for method, calls in together.calls.items():
                nursery.start_soon(answer_together, method, calls)
    if not answers:
        return None
    if not is_batch:
        return answers[0]
    return b"[" + b",".join(answers[index] for index in sorted(answers)) + b"]"
