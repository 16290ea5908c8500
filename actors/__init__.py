"""Per-feature actors that own counters and serialize admission (DESIGN.md §2)."""

from actors.supervisor import Held, Supervisor
from actors.transactions import BookingRequest

__all__ = ["BookingRequest", "Held", "Supervisor"]
