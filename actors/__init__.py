"""Per-feature actors that own counters and serialize admission (DESIGN.md §2)."""

from actors.supervisor import Supervisor
from actors.transactions import BookingRequest

__all__ = ["BookingRequest", "Supervisor"]
