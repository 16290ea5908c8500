"""Who is calling: what a verified token says, reduced to what the methods need."""

from dataclasses import dataclass

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

    def may_change_cluster(self, cluster_client_id: str) -> bool:
        """Jobs and bookings are changed only by their own cluster or an admin."""
        return self.is_admin or self.cluster_client_id == cluster_client_id
