"""rpc.discover: the OpenRPC document of this service."""

from typing import Any

from lmrpc import openrpc
from lmrpc.params import NoParams
from lmrpc.registry import CallContext, method


@method("rpc.discover", permission=None)
async def discover(ctx: CallContext, p: NoParams) -> dict[str, Any]:
    """The OpenRPC document of this service (methods, params, results, errors)."""
    return openrpc.document()
