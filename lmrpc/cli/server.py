"""Server-side commands: ``serve``, ``db upgrade``, ``token``."""

import os
import signal
import sys
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

# The server, storage and settings modules are imported inside the commands: every other
# command (the agent's prolog above all) would otherwise pay for alembic and SQLAlchemy.

if TYPE_CHECKING:
    from joserfc.jwk import RSAKey

    from lmrpc.settings import Settings

KEEP_ALIVE_TIMEOUT_S = 75
READ_TIMEOUT_S = 30

db = typer.Typer(help="Database schema management.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [LMRPC_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [LMRPC_PORT].")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Database URL [LMRPC_DATABASE_URL].")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Number of server processes.")] = 1,
) -> None:
    """Run the service (example: lmrpc serve --port 8000 --workers 2)."""
    from hypercorn.config import Config
    from hypercorn.run import run

    from lmrpc import logs
    from lmrpc.settings import Settings
    from storage import migrate
    from storage.engine import is_sqlite

    for name, value in (("HOST", host), ("PORT", port), ("DATABASE_URL", database_url)):
        if value is not None:
            os.environ[f"LMRPC_{name}"] = str(value)  # worker processes read the same
    settings = Settings()
    logs.configure(settings.log_format, settings.log_level)
    if is_sqlite(settings.database):
        migrate.upgrade(settings.database)
    elif not migrate.is_current(settings.database):
        typer.echo("the database schema is not current: run `lmrpc db upgrade`", err=True)
        raise typer.Exit(2)
    if settings.embedded_auth:
        _embedded_key(settings)
    config = Config()
    config.application_path = "lmrpc.asgi:app"
    config.bind = [f"{settings.host}:{settings.port}"]
    config.worker_class = "trio"
    config.workers = workers
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT_S
    config.read_timeout = READ_TIMEOUT_S
    config.accesslog = None
    config.graceful_timeout = settings.graceful_timeout
    if workers > 1:
        sys.exit(run(config))  # Hypercorn's processes; its parent turns SIGTERM into shutdown
    import trio
    from hypercorn.trio import serve as serve_app

    from lmrpc.asgi import app

    trio.run(partial(serve_app, app, config, shutdown_trigger=_until_stopped))


async def _until_stopped() -> None:
    """Return on SIGTERM or SIGINT: Hypercorn then stops accepting, lets in-flight calls
    finish within the graceful timeout, and runs the app's shutdown (actors drain)."""
    import trio

    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            return


@db.command("upgrade")
def upgrade() -> None:
    """Apply schema migrations to LMRPC_DATABASE_URL (example: lmrpc db upgrade)."""
    from lmrpc.settings import Settings
    from storage import migrate

    migrate.upgrade(Settings().database)
    typer.echo("database schema is current")


def token(
    client_id: Annotated[str | None, typer.Option(help="Cluster the token names (azp).")] = None,
    permission: Annotated[
        list[str] | None, typer.Option(help="A permission; repeat for several. Default: admin.")
    ] = None,
    organization: Annotated[str | None, typer.Option(help="Tenant (multi-tenancy).")] = None,
    ttl: Annotated[int, typer.Option(min=1, help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print an access token signed with the embedded key (example: lmrpc token --client-id c1)."""
    from lmrpc.settings import Settings

    settings = Settings()
    if not settings.embedded_auth:
        typer.echo("lmrpc token works only in embedded mode (no LMRPC_OIDC_* set)", err=True)
        raise typer.Exit(2)
    from lmrpc import keys

    key = _embedded_key(settings)
    typer.echo(
        keys.mint(
            key, client_id=client_id, permissions=permission, organization=organization, ttl=ttl
        )
    )


def _embedded_key(settings: "Settings") -> "RSAKey":
    """The data dir's signing key; a key file that is unsafe to use ends the command."""
    from lmrpc import keys

    try:
        return keys.load_or_create(settings.data_dir)
    except keys.KeyFileError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(token)
    app.add_typer(db, name="db")
