"""The service's start freezes the objects that live as long as the server (lmrpc/app.py):
full collections then skip them, which took them out of the tail of single calls."""

import gc
from pathlib import Path

import trio

from lmrpc.app import Service
from lmrpc.settings import Settings
from tests.tokens import ISSUER, TokenFactory


async def test_the_start_freezes_what_lives_as_long_as_the_server(
    database_url: str, tokens: TokenFactory, tmp_path: Path, nursery: trio.Nursery
) -> None:
    gc.unfreeze()
    threshold = gc.get_threshold()
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        oidc_jwks_file=tokens.jwks_file,
        oidc_issuer=ISSUER,
    )
    service = Service(settings)
    try:
        await service.start(nursery)
        assert gc.get_freeze_count() > 10_000  # the modules and the app, at least
        assert gc.get_threshold()[0] > threshold[0]  # fewer young collections
    finally:
        await service.stop()
        gc.unfreeze()  # the test process goes on allocating and freeing as before
        gc.set_threshold(*threshold)
