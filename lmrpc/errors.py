"""JSON-RPC error codes of API.md §3 and the mapping from domain errors to them."""

from typing import Any

from storage.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotEnoughLicenses,
    NotFound,
    StorageUnavailable,
)

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


def invalid_params(field: str, message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, {"errors": [{"field": field, "message": message}]})


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
