"""The read-only web dashboard: static page, its sign-in, and the routes serving them."""

from lmrpc.ui.routes import register_ui

__all__ = ["register_ui"]
