"""Prometheus metrics (API.md §5 "Metrics"): per-feature license gauges read from the
database at scrape time, and the service's own counters and histograms.

With ``lmrpc serve --workers N`` each process keeps its own service counters; the license
gauges come from the database and agree whichever process is scraped.
"""

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lmrpc import jsonrpc
from lmrpc.registry import METHODS
from lmrpc.tenants import Tenant
from storage.usage import feature_usage

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LICENSE_GAUGES = (
    ("license_total", "Licenses of the feature on its license servers"),
    ("license_used", "Licenses in use as the cluster agent last reported"),
    ("license_reserved", "Licenses kept back from Slurm"),
    ("license_booked", "Licenses booked by running jobs"),
)


class ServiceMetrics:
    """The service's own metrics, in a registry of their own (one per process).

    With multi-tenancy (``per_tenant``) every sample carries the caller's ``organization``,
    so that a tenant's scrape shows its own calls only.
    """

    def __init__(self, per_tenant: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.per_tenant = per_tenant
        extra = ["organization"] if per_tenant else []
        self.calls = Counter(
            "lmrpc_calls",
            "JSON-RPC calls by method and outcome (ok or the error code)",
            ["method", "outcome", *extra],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lmrpc_call_duration_seconds",
            "Time to answer a JSON-RPC call",
            ["method", *extra],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        # (method, outcome[, organization]) → its counter and histogram children
        self._children: dict[tuple[str, ...], tuple[Counter, Histogram]] = {}

    def observe(
        self, call: jsonrpc.Call, code: int | None, seconds: float, organization: str | None
    ) -> None:
        method = call.method if call.method in METHODS else "unknown"  # bounded labels
        org = (organization or "",) if self.per_tenant else ()
        key = (method, "ok" if code is None else str(code), *org)
        children = self._children.get(key)
        if children is None:  # looking a child up by its labels costs more than using it
            children = self.calls.labels(*key), self.latency.labels(method, *org)
            self._children[key] = children
        calls, latency = children
        calls.inc()
        latency.observe(seconds)

    def collect(self, tenants: list[Tenant]) -> list[Metric]:
        """The service's metrics; with multi-tenancy only the samples of ``tenants``."""
        families = list(self.registry.collect())
        if not self.per_tenant:
            return families
        shown = {tenant.organization or "" for tenant in tenants}
        for family in families:
            family.samples = [s for s in family.samples if s.labels["organization"] in shown]
        return families


async def render(service_metrics: ServiceMetrics, tenants: list[Tenant]) -> bytes:
    """The exposition text: license gauges from the tenants' databases, admissions, actors
    and storage errors per tenant (``organization`` label with multi-tenancy), then the
    service's own call metrics of those tenants."""
    per_tenant = service_metrics.per_tenant
    extra = ["organization"] if per_tenant else []
    families = {
        name: GaugeMetricFamily(name, text, labels=["cluster", "product", "feature", *extra])
        for name, text in _LICENSE_GAUGES
    }
    admissions = CounterMetricFamily(
        "lmrpc_admissions", "Bookings admitted or refused", labels=["outcome", *extra]
    )
    refused = CounterMetricFamily(
        "lmrpc_refused_licenses",
        "Licenses asked for by calls refused with -32010, per feature (this process)",
        labels=["cluster", "product", "feature", *extra],
    )
    live = GaugeMetricFamily("lmrpc_live_actors", "Feature actors held in memory", labels=extra)
    errors = CounterMetricFamily(
        "lmrpc_storage_errors", "Storage calls that failed as unavailable", labels=extra
    )
    for tenant in tenants:
        org = [tenant.organization or ""] if per_tenant else []
        for cluster, product, feature, *values in await tenant.storage.read(feature_usage):
            for (name, _), value in zip(_LICENSE_GAUGES, values, strict=True):
                families[name].add_metric([cluster, product, feature, *org], value)
        admissions.add_metric(["admitted", *org], tenant.actors.admitted)
        admissions.add_metric(["refused", *org], tenant.actors.refused)
        for labels, licenses in tenant.actors.refusals.licenses.items():
            refused.add_metric([*labels, *org], licenses)
        live.add_metric(org, tenant.actors.live)
        errors.add_metric(org, tenant.storage.errors)
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(
        _Fixed(
            [
                *families.values(),
                admissions,
                refused,
                live,
                errors,
                *service_metrics.collect(tenants),
            ]
        )
    )
    return generate_latest(scrape)


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics
