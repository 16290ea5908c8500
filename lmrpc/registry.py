"""The method registry: name → permission, params model, [cluster] flag, handler.

The dispatcher enforces permission and cluster identity from this table, so no handler
can forget them; the OpenRPC document is generated from it.
"""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection

from lmrpc.identity import Identity
from lmrpc.params import NoParams

R = TypeVar("R")

if TYPE_CHECKING:
    from actors import Supervisor
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

    async def write_counters(self, change: Callable[[Connection], tuple[R, Iterable[int]]]) -> R:
        """Run a write that changes features' counters or bookings outside the actors, and
        mark those features' actors stale. ``change`` returns its result and the feature
        ids it touched; being the only way to write them, no handler can forget to refresh
        an actor (whose cached counters would then admit or refuse wrongly)."""
        result, touched = await self.storage.write(change)
        self.actors.invalidate(touched)
        return result


P = TypeVar("P", bound=BaseModel)
Handler = Callable[[CallContext, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    permission: str | None  # "resource:action"; None: any valid token
    params: type[BaseModel]
    handler: Handler
    cluster: bool
    description: str


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
    """Register ``handler`` as JSON-RPC method ``name``; its docstring's first line describes it."""

    def register(
        handler: Callable[[CallContext, P], Awaitable[Any]],
    ) -> Callable[[CallContext, P], Awaitable[Any]]:
        if name in METHODS:
            raise ValueError(f"method {name} registered twice")
        description = (handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else ""
        METHODS[name] = Method(name, permission, params, handler, cluster, description)
        return handler

    return register
