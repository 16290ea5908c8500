"""Service configuration from ``LMRPC_*`` environment variables (API.md §6)."""

from pathlib import Path
from typing import Literal

from platformdirs import user_data_path
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.timeouts import DEFAULT_DB_TIMEOUT_S

EMBEDDED_ISSUER = "lmrpc-local"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LMRPC_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: user_data_path("lmrpc"))
    database_url: str | None = None
    db_timeout: float = Field(default=DEFAULT_DB_TIMEOUT_S, gt=0, le=3600)
    host: str = "127.0.0.1"
    port: int = 8000
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_jwks_file: Path | None = None
    oidc_algorithms: str = "RS256,ES256"
    permissions_claim: str = "permissions"
    client_id_claims: str = "azp,client_id"
    multi_tenancy: bool = False
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_batch: int = Field(default=1000, ge=1)
    max_response_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024)
    metrics_public: bool = False
    graceful_timeout: float = Field(default=15.0, ge=0)
    headers_timeout: float = Field(default=10.0, gt=0)
    body_timeout: float = Field(default=60.0, gt=0)
    max_connections: int | None = Field(default=None, ge=1)
    log_format: Literal["plain", "json"] = "plain"
    log_level: str = "INFO"
    # Usage history: at most one sample per feature and this many seconds (docs/usage.md).
    usage_resolution: int = Field(default=60, ge=1, le=900)
    ui_client_id: str | None = None
    ui_scope: str = "openid"

    @field_validator(
        "oidc_issuer", "oidc_audience", "oidc_jwks_url", "oidc_jwks_file", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``LMRPC_OIDC_X=`` (empty) means not set, as for a shell user it does."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("usage_resolution")
    @classmethod
    def _divides_an_hour(cls, value: int) -> int:
        """Samples are packed and rolled up per hour, so whole buckets must fill one."""
        if 3600 % value:
            raise ValueError("LMRPC_USAGE_RESOLUTION must divide 3600 (e.g. 10, 30, 60, 300)")
        return value

    @property
    def embedded_auth(self) -> bool:
        """No identity provider configured: sign and verify with a local key."""
        return not (self.oidc_issuer or self.oidc_jwks_url or self.oidc_jwks_file)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'lmrpc.sqlite3'}"

    @property
    def algorithms(self) -> list[str]:
        return _split(self.oidc_algorithms)

    @property
    def client_claims(self) -> list[str]:
        return _split(self.client_id_claims)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
