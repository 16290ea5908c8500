"""Domain errors raised by storage and admission; the RPC layer maps them to error codes."""

from collections.abc import Callable
from typing import Any

# Decides whether the caller may change what a cluster owns; raises a DomainError if not.
# Storage reads the owner and hands it over; the caller's identity decides (lmrpc/identity.py).
OwnerCheck = Callable[[str], None]


class DomainError(Exception):
    """Base of every expected failure a caller can act on."""


class NotFound(DomainError):
    def __init__(self, resource: str, id: Any = None, missing: list[str] | None = None) -> None:
        super().__init__(f"{resource} not found")
        self.resource = resource
        self.id = id
        self.missing = missing


class Conflict(DomainError):
    def __init__(self, reason: str, **ids: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.ids = ids


class NotEnoughLicenses(DomainError):
    """``cluster_client_id``: the feature's cluster, for the refused-demand metrics."""

    def __init__(
        self,
        feature_id: int,
        product_feature: str,
        requested: int,
        available: int,
        cluster_client_id: str,
    ):
        super().__init__(f"not enough licenses for {product_feature}")
        self.feature_id = feature_id
        self.product_feature = product_feature
        self.requested = requested
        self.available = available
        self.cluster_client_id = cluster_client_id


class StorageUnavailable(DomainError):
    """The database could not be reached or timed out; nothing was changed."""


class StorageFailure(Exception):
    """A database error that is a bug rather than the caller's doing (answered -32603).

    Its message names the database's error and the statement but never values: a failing
    row or a parameter may hold anything a caller sent (PostgreSQL's DETAIL quotes rows).
    """
