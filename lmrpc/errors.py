"""JSON-RPC error codes of API.md §3 and the mapping from domain errors to them."""

from collections.abc import Iterable
from itertools import islice
from typing import Any

from storage.errors import (
    Conflict,
    DomainError,
    NotEnoughLicenses,
    NotFound,
    StorageUnavailable,
)


class Forbidden(DomainError):
    """The caller may not change this object (it belongs to another cluster)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNAUTHENTICATED = -32001
FORBIDDEN = -32003
NOT_FOUND = -32004
CONFLICT = -32009
NOT_ENOUGH_LICENSES = -32010
NO_CLUSTER = -32011
RESPONSE_TOO_LARGE = -32012
STORAGE_UNAVAILABLE = -32050

MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
    UNAUTHENTICATED: "Unauthenticated",
    FORBIDDEN: "Forbidden",
    NOT_FOUND: "Not found",
    CONFLICT: "Conflict",
    NOT_ENOUGH_LICENSES: "Not enough licenses",
    NO_CLUSTER: "The token names no cluster",
    RESPONSE_TOO_LARGE: "Result too large for the response budget",
    STORAGE_UNAVAILABLE: "Storage unavailable, retry later",
}


class RpcError(Exception):
    """An error answered to the caller as a JSON-RPC error object."""

    def __init__(self, code: int, data: Any = None, message: str | None = None) -> None:
        super().__init__(message or MESSAGES[code])
        self.code = code
        self.message = message or MESSAGES[code]
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


# An error lists at most this many problems, each name cut to this many characters, so a
# request with a million bad names gets a small answer (API.md §3).
MAX_LISTED = 20
MAX_NAME_CHARS = 100


def first_names(names: Iterable[str]) -> list[str]:
    """The first MAX_LISTED of ``names``, each cut to MAX_NAME_CHARS; reads no further."""
    return [name[:MAX_NAME_CHARS] for name in islice(names, MAX_LISTED)]


def invalid_params(field: str, message: str) -> RpcError:
    return invalid_params_of([(field, message)])


def invalid_params_of(problems: Iterable[tuple[str, str]], more: int = 0) -> RpcError:
    """-32602 listing (field, message) problems: at most MAX_LISTED, plus ``"more": n`` for
    those left out (``more`` counts problems the caller did not even pass in)."""
    problems = iter(problems)
    listed = [(field[:MAX_NAME_CHARS], message) for field, message in islice(problems, MAX_LISTED)]
    more += sum(1 for _ in problems)
    data: dict[str, Any] = {"errors": [{"field": f, "message": m} for f, m in listed]}
    if more:
        data["more"] = more
    return RpcError(INVALID_PARAMS, data)


def from_domain(error: DomainError) -> RpcError:
    """The JSON-RPC error for an expected domain failure."""
    match error:
        case NotFound(missing=list() as missing):
            return RpcError(NOT_FOUND, {"missing": missing})
        case NotFound():
            return RpcError(
                NOT_FOUND,
                {"resource": error.resource, "id": error.id},
                f"{error.resource} not found",
            )
        case Conflict():
            return RpcError(CONFLICT, {"reason": error.reason, **error.ids})
        case Forbidden():
            return RpcError(FORBIDDEN, {"reason": error.reason})
        case NotEnoughLicenses():
            return RpcError(
                NOT_ENOUGH_LICENSES,
                {
                    "feature_id": error.feature_id,
                    "product_feature": error.product_feature,
                    "requested": error.requested,
                    "available": error.available,
                },
            )
        case StorageUnavailable():
            return RpcError(STORAGE_UNAVAILABLE)
    return RpcError(INTERNAL_ERROR)
