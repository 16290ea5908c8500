"""The embedded signing key: made once in the data dir, used to mint and verify tokens.

Whoever reads the private key can mint admin tokens, so the data dir is kept private
(0700) and the key is written to a fresh 0600 file that nobody else can have planted.
"""

import contextlib
import json
import logging
import os
import stat
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from lmrpc.identity import ADMIN
from lmrpc.settings import EMBEDDED_ISSUER

log = logging.getLogger("lmrpc.keys")

PRIVATE_KEY_FILE = "signing-key.jwk"
ALGORITHM = "RS256"
_PRIVATE_MODE = 0o077  # group and other bits


class KeyFileError(Exception):
    """The key file cannot be used safely (a symlink, unreadable)."""


def private_dir(path: Path) -> None:
    """Create ``path`` with mode 0700, or take group and other access away from an existing
    one (with a warning): it holds the signing key and the embedded database."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & _PRIVATE_MODE:
        log.warning("data dir %s had mode %04o: tightened to %04o", path, mode, mode & 0o700)
        path.chmod(mode & 0o700)


def load_or_create(data_dir: Path) -> RSAKey:
    """The data dir's private key, created on first use with file mode 0600."""
    private_dir(data_dir)
    path = data_dir / PRIVATE_KEY_FILE
    if not path.exists():
        key = RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex, "alg": ALGORITHM})
        # mkstemp: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, an unpredictable name
        descriptor, temporary = tempfile.mkstemp(prefix=".signing-key.", dir=data_dir)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(json.dumps(key.as_dict(private=True)))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)  # first writer wins when racing; never overwrites
        finally:
            os.unlink(temporary)
    return RSAKey.import_key(json.loads(_read_private(path)))


def _read_private(path: Path) -> str:
    """The key file's text; refused when it is a symlink, tightened when others may read it."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise KeyFileError(f"cannot open the signing key {path}: {error.strerror}") from None
    with os.fdopen(descriptor) as handle:
        mode = stat.S_IMODE(os.fstat(descriptor).st_mode)
        if mode & _PRIVATE_MODE:
            log.warning("signing key %s had mode %04o: tightened to 0600", path, mode)
            os.fchmod(descriptor, 0o600)
        return handle.read()


def public_key_set(key: RSAKey) -> KeySet:
    return KeySet([RSAKey.import_key(key.as_dict(private=False))])


def mint(
    key: RSAKey,
    *,
    client_id: str | None = None,
    permissions: list[str] | None = None,
    organization: str | None = None,
    ttl: int = 3600,
    subject: str = "lmrpc-cli",
) -> str:
    """An access token signed with the embedded key (default: admin)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": EMBEDDED_ISSUER,
        "sub": subject,
        "iat": now,
        "exp": now + ttl,
        "permissions": permissions if permissions is not None else [ADMIN],
    }
    if client_id:
        claims["azp"] = client_id
    if organization:
        claims["organization"] = organization
    return jwt.encode({"alg": ALGORITHM, "kid": key.kid}, claims, key)
