"""``lmrpc ui``: a one-time sign-in link to the dashboard in the embedded default."""

from typing import Annotated

import typer

from lmrpc.client import DEFAULT_URL
from lmrpc.ui.lifetimes import CODE_TTL_S, SESSION_TTL_S

HELP = f"""Print a one-time link that signs the dashboard in read-only (example: lmrpc ui).

The link works once, within {CODE_TTL_S // 60} minutes, on the server that shares this data dir.
"""


def ui(
    url: Annotated[str, typer.Option(envvar="LMRPC_URL", help="Base URL of the service.")] = (
        DEFAULT_URL
    ),
    ttl: Annotated[
        int, typer.Option(min=60, help="Lifetime of the dashboard session in seconds.")
    ] = SESSION_TTL_S,
    organization: Annotated[str | None, typer.Option(help="Tenant (multi-tenancy).")] = None,
) -> None:
    # Imported here: the service's settings and the sign-in store would slow `lmrpc --help`.
    from lmrpc.settings import Settings
    from lmrpc.ui import signin

    settings = Settings()
    if not settings.embedded_auth:
        typer.echo(
            "lmrpc ui works only in embedded mode; with an identity provider open "
            f"{url.rstrip('/')}/ui/ and sign in there",
            err=True,
        )
        raise typer.Exit(2)
    if settings.multi_tenancy and not organization:
        typer.echo("with LMRPC_MULTI_TENANCY=1 name the tenant: --organization ORG", err=True)
        raise typer.Exit(2)
    code = signin.issue(settings.data_dir, organization=organization, session_ttl=ttl)
    typer.echo(f"{url.rstrip('/')}/ui/#code={code}")


def register(app: typer.Typer) -> None:
    app.command(help=HELP)(ui)
