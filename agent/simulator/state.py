"""The simulator's state file (``LMRPC_SIM_STATE``): what each license server reports.

A JSON object keyed by ``host:port``::

    {"lic1:27000": {"features": {"abaqus": {"total": 10, "used": 3,
                                            "checkouts": [{"username": "jdoe",
                                                           "lead_host": "node01",
                                                           "quantity": 2}]}},
                    "down": false, "hung": false, "shared_pool": false}}

``used`` defaults to the sum of the checkouts. A server that is ``down`` (or not in the
file) makes its tool fail with the tool's error text; a ``hung`` one outsleeps any timeout.
``shared_pool`` (LS-DYNA) prints the features as one license group.
"""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, RootModel

from agent.usage import Checkout, FeatureUsage, Report


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SimCheckout(_Strict):
    username: str
    lead_host: str
    quantity: int = Field(default=1, ge=1)


class SimFeature(_Strict):
    total: int = Field(ge=0)
    used: int | None = Field(default=None, ge=0)
    checkouts: list[SimCheckout] = []

    def usage(self) -> FeatureUsage:
        checkouts = tuple(Checkout(c.username, c.lead_host, c.quantity) for c in self.checkouts)
        used = sum(c.quantity for c in checkouts) if self.used is None else self.used
        return FeatureUsage(self.total, used, checkouts)


class SimServer(_Strict):
    features: dict[str, SimFeature] = {}
    down: bool = False
    hung: bool = False
    shared_pool: bool = False

    def report(self) -> Report:
        return {name: feature.usage() for name, feature in self.features.items()}


class SimState(RootModel[dict[str, SimServer]]):
    def server(self, host: str, port: int) -> SimServer | None:
        return self.root.get(f"{host}:{port}")


def load(path: Path) -> SimState:
    return SimState.model_validate_json(path.read_bytes())
