"""The embedded signing key: made once in the data dir, used to mint and verify tokens."""

import contextlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from lmrpc.identity import ADMIN
from lmrpc.settings import EMBEDDED_ISSUER

PRIVATE_KEY_FILE = "signing-key.jwk"
ALGORITHM = "RS256"


def load_or_create(data_dir: Path) -> RSAKey:
    """The data dir's private key, created on first use with file mode 0600."""
    path = data_dir / PRIVATE_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex, "alg": ALGORITHM})
        text = json.dumps(key.as_dict(private=True))
        descriptor = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        with contextlib.suppress(FileExistsError):
            os.link(path.with_suffix(".tmp"), path)  # first writer wins when racing
        os.unlink(path.with_suffix(".tmp"))
    return RSAKey.import_key(json.loads(path.read_text()))


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
