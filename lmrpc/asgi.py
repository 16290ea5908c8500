"""The ASGI application that Hypercorn's workers import: ``lmrpc.asgi:app``."""

import lmrpc.methods  # noqa: F401  (registers the methods)
from lmrpc import connections, logs
from lmrpc.app import create_app
from lmrpc.settings import Settings

settings = Settings()
logs.configure(settings.log_format, settings.log_level)
connections.install(settings)  # this worker process's connection limits
app = create_app(settings)
