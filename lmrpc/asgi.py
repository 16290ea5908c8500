"""The ASGI application that Hypercorn's workers import: ``lmrpc.asgi:app``."""

import lmrpc.methods  # noqa: F401  (registers the methods)
from lmrpc.app import create_app

app = create_app()
