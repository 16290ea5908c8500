"""The JSON-RPC methods, one module per resource; importing this package registers them."""

from lmrpc.methods import bookings, jobs, products

__all__ = ["bookings", "jobs", "products"]
