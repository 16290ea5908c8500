"""What one license server reports: per feature, its total, its used count and checkouts."""

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class Checkout:
    """One checkout seen on a license server: who holds how many licenses, from which host."""

    username: str
    lead_host: str
    quantity: int


@dataclass(frozen=True, slots=True)
class FeatureUsage:
    total: int
    used: int
    checkouts: tuple[Checkout, ...] = field(default=())


# Feature name as the license tool prints it → its usage.
Report = dict[str, FeatureUsage]

# The license server types of the API (``license_servers.types``).
ServerType = Literal["flexlm", "rlm", "lsdyna", "lmx", "olicense", "dsls"]
