"""Real signed tokens for tests: a key pair the tests make, its JWKS file, and a minter."""

import json
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

ISSUER = "https://issuer.test/realms/hpc"
AUDIENCE = "lmrpc"


class TokenFactory:
    def __init__(self, directory: Path) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex, "alg": "RS256"})
        self.jwks_file = directory / "jwks.json"
        self.jwks_file.write_text(json.dumps({"keys": [self.key.as_dict(private=False)]}))

    def mint(
        self,
        *permissions: str,
        client_id: str | None = "cluster-a",
        ttl: int = 600,
        key: RSAKey | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token with ``permissions`` (short forms like ``job:read`` get the prefix;
        ``admin`` is the admin permission) for cluster ``client_id``."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "test",
            "iat": now,
            "exp": now + ttl,
            "permissions": [expand(p) for p in permissions],
        }
        if client_id is not None:
            body["azp"] = client_id
        body.update(claims)
        signing_key = key or self.key
        return jwt.encode(
            {"alg": "RS256", "kid": signing_key.kid, **(header or {})}, body, signing_key
        )


def expand(permission: str) -> str:
    if permission == "admin":
        return "license-manager:admin"
    return (
        permission if permission.startswith("license-manager:") else f"license-manager:{permission}"
    )
