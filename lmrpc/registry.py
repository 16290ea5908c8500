"""The method registry: name → permission, params model, [cluster] flag, handler.

The dispatcher enforces permission and cluster identity from this table, so no handler
can forget them; the OpenRPC document is generated from it.
"""

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from lmrpc.identity import Identity
from lmrpc.params import NoParams

if TYPE_CHECKING:
    from actors.supervisor import Supervisor
    from storage.facade import Storage


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a handler may use: the caller and the services of the caller's tenant."""

    identity: Identity
    storage: "Storage"
    actors: "Supervisor"

    @property
    def cluster(self) -> str:
        """The caller's cluster; the dispatcher guarantees it for [cluster] methods."""
        assert self.identity.cluster_client_id is not None
        return self.identity.cluster_client_id


P = TypeVar("P", bound=BaseModel)
Handler = Callable[[CallContext, Any], Awaitable[Any]]
# Runs many calls' params at once: each call's result or the exception it ended with, in order.
BatchHandler = Callable[[CallContext, list[Any]], Awaitable[Sequence[Any]]]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    permission: str | None  # "resource:action"; None: any valid token
    params: type[BaseModel]
    handler: Handler
    cluster: bool
    description: str
    batch: BatchHandler | None = None  # the calls of a batch run through it together


METHODS: dict[str, Method] = {}


def method(
    name: str,
    *,
    permission: str | None,
    params: type[P] | type[NoParams] = NoParams,
    cluster: bool = False,
) -> Callable[
    [Callable[[CallContext, P], Awaitable[Any]]], Callable[[CallContext, P], Awaitable[Any]]
]:
    """Register ``handler`` as JSON-RPC method ``name``; its docstring's first paragraph
    describes it."""

    def register(
        handler: Callable[[CallContext, P], Awaitable[Any]],
    ) -> Callable[[CallContext, P], Awaitable[Any]]:
        if name in METHODS:
            raise ValueError(f"method {name} registered twice")
        description = " ".join((inspect.getdoc(handler) or "").split("\n\n")[0].split())
        METHODS[name] = Method(name, permission, params, handler, cluster, description)
        return handler

    return register


def batched(name: str) -> Callable[[BatchHandler], BatchHandler]:
    """Register ``handler`` to run the calls of method ``name`` in one batch together (the
    dispatcher checks each call first as usual)."""

    def register(handler: BatchHandler) -> BatchHandler:
        METHODS[name] = replace(METHODS[name], batch=handler)
        return handler

    return register
