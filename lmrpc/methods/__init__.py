"""The JSON-RPC methods, one module per resource; importing this package registers them."""

from lmrpc.methods import (
    bookings,
    clusters,
    configurations,
    discover,
    features,
    jobs,
    license_servers,
    products,
    usage,
)

__all__ = [
    "bookings",
    "clusters",
    "configurations",
    "discover",
    "features",
    "jobs",
    "license_servers",
    "products",
    "usage",
]
