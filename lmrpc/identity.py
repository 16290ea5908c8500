"""Who is calling: what a verified token says, reduced to what the methods need."""

from dataclasses import dataclass

from lmrpc.errors import Forbidden

ADMIN = "license-manager:admin"
PREFIX = "license-manager:"


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str | None
    permissions: frozenset[str]
    cluster_client_id: str | None
    organization: str | None
    expires_at: float

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.permissions

    def allows(self, permission: str) -> bool:
        """Whether the token grants ``permission`` (``resource:action``), admin grants all."""
        return self.is_admin or PREFIX + permission in self.permissions

    def check_owner(self, owner: str) -> None:
        """The one ownership rule: a job and its bookings are changed only by the job's own
        cluster (``owner``) or an admin; anyone else gets Forbidden."""
        if not (self.is_admin or self.cluster_client_id == owner):
            raise Forbidden("the job belongs to another cluster")
