"""What the OIDC tests share: a verifier of a test issuer's tokens, and the environment of a
server that takes its keys from the issuer's discovery."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmrpc.auth import KeyStore, TokenVerifier
from lmrpc.settings import Settings
from tests.oidc_issuer import AUDIENCE
from tests.server import server_env
from tests.tokens import TokenFactory


def verifier_for(
    issuer_url: str, *, clock: Callable[[], float] = time.time, **store: Any
) -> TokenVerifier:
    settings = Settings(oidc_issuer=issuer_url, oidc_audience=AUDIENCE)
    return TokenVerifier(settings, KeyStore(issuer=issuer_url, **store), clock=clock)


def oidc_env(
    issuer_url: str, tokens: TokenFactory, directory: Path, **extra: str | None
) -> dict[str, str]:
    return server_env(
        f"sqlite:///{directory / 'lmrpc.sqlite3'}",
        tokens,
        directory / "data",
        {
            "LMRPC_OIDC_ISSUER": issuer_url,
            "LMRPC_OIDC_AUDIENCE": AUDIENCE,
            "LMRPC_OIDC_JWKS_FILE": None,  # keys come from the issuer's discovery
            **extra,
        },
    )
