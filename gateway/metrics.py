"""`/metrics` in Prometheus' text format: what every layer counted, read at scrape time.

The hot paths only bump plain numbers (`actors.tally`); this module alone imports
prometheus_client and turns them into metric families when Prometheus asks. One process
serves both ports and the sockets (`boxoffice serve`), so one registry per app is the whole
process: nothing needs PROMETHEUS_MULTIPROC_DIR. Category actors are other processes (maybe
on other nodes); what they count reaches every gateway through the change feed
(`boxoffice_actor_*`), so those series are the same on every gateway: use `max`, not `sum`,
across gateways.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from actors.tally import Counts, Histograms
from actors.telemetry import ActorTally
from gateway.errors import error_response
from gateway.limits import Limits, is_loopback
from realtime.telemetry import SocketTally
from sales.tally import SalesTally

METRICS_PATH = "/metrics"


class RequestTally:
    """Requests by (route template, method, status): counts and latency."""

    __slots__ = ("latency",)

    def __init__(self) -> None:
        self.latency = Histograms()

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.latency.observe((route, method, status), seconds)


@dataclass(frozen=True, slots=True)
class Sources:
    """Everything one gateway process counts, and the gauges read when scraped."""

    requests: RequestTally
    sales: SalesTally
    sockets: SocketTally
    limits: Limits
    connected_sockets: Callable[[], int]
    actors: ActorTally | None = None


def _counter(name: str, doc: str, labels: list[str], counts: Counts) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(counts.values.items(), key=lambda item: repr(item[0])):
        values = list(key) if isinstance(key, tuple) else [str(key)]
        family.add_metric([str(v) for v in values], value)
    return family


def _histogram(
    name: str, doc: str, labels: list[str], histograms: Histograms
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key in sorted(histograms.series, key=repr):
        buckets, total = histograms.cumulative(key)
        values = [str(v) for v in key] if isinstance(key, tuple) else []
        family.add_metric(values, buckets, total)
    return family


class BoxofficeCollector(Collector):
    def __init__(self, sources: Sources) -> None:
        self._sources = sources

    def collect(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        src = self._sources
        latency = src.requests.latency
        # A series' count is the sum of its buckets (all but the last slot, the sum).
        requests = CounterMetricFamily(
            "boxoffice_http_requests",
            "HTTP requests answered, by route template, method and status",
            labels=["route", "method", "status"],
        )
        for key in sorted(latency.series, key=repr):
            labels = [str(v) for v in key] if isinstance(key, tuple) else [str(key)]
            requests.add_metric(labels, sum(latency.series[key][:-1]))
        yield requests
        yield _histogram(
            "boxoffice_http_request_duration_seconds",
            "HTTP request latency, by route template, method and status",
            ["route", "method", "status"],
            latency,
        )
        yield _counter(
            "boxoffice_holds",
            "Holds asked for, by outcome (placed, or the refusal's reason)",
            ["outcome"],
            src.sales.holds,
        )
        yield _counter(
            "boxoffice_orders",
            "Orders asked for, by outcome (placed, replayed, or the refusal's reason)",
            ["outcome"],
            src.sales.orders,
        )
        yield _counter(
            "boxoffice_refusals",
            "Refused seat operations, by operation and reason",
            ["operation", "reason"],
            src.sales.refusals,
        )
        limited = CounterMetricFamily(
            "boxoffice_rate_limited",
            "Requests and socket events refused by a rate limit, by limit",
            labels=["limit"],
        )
        limits = src.limits
        for name, count in (
            ("per_user", limits.per_user.refused),
            ("per_address", limits.per_address.refused),
            ("auth_per_address", limits.auth_per_address.refused),
            ("auth_per_username", limits.auth_per_username.refused),
            ("socket_events", src.sockets.rate_limited),
        ):
            limited.add_metric([name], count)
        yield limited
        yield GaugeMetricFamily(
            "boxoffice_socket_connections",
            "Socket.IO connections open on this process",
            value=src.connected_sockets(),
        )
        yield _counter(
            "boxoffice_socket_events",
            "Socket.IO events received, by event name",
            ["event"],
            src.sockets.events,
        )
        yield _histogram(
            "boxoffice_feed_lag_seconds",
            "From a change in a category actor to its availability-update leaving this process",
            [],
            src.sockets.feed_lag,
        )
        actors = src.actors
        if actors is not None:
            yield GaugeMetricFamily(
                "boxoffice_actor_categories_live",
                "Category actors that reported in the last minute",
                value=actors.live(),
            )
            yield _histogram(
                "boxoffice_actor_activation_seconds",
                "Time a category actor took to rebuild itself at activation",
                [],
                actors.activation,
            )
            yield _histogram(
                "boxoffice_actor_group_commit_batch_size",
                "Orders written per group-commit transaction",
                [],
                actors.batch_size,
            )
            yield _histogram(
                "boxoffice_actor_group_commit_seconds",
                "Duration of one group-commit transaction",
                [],
                actors.commit_seconds,
            )


def registry_of(sources: Sources) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BoxofficeCollector(sources))
    return registry


class MetricsEndpoint:
    """Answers `GET /metrics`, passes everything else on.

    With METRICS_TOKEN set, only `Authorization: Bearer <METRICS_TOKEN>` reads it (compared
    in constant time); without, only loopback clients do.
    """

    def __init__(self, app: ASGIApp, registry: CollectorRegistry, token: str | None) -> None:
        self.app = app
        self.registry = registry
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != METRICS_PATH:
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            response = error_response(405, f"Method {scope['method']} is not allowed on /metrics")
            await response(scope, receive, send)
            return
        body = generate_latest(self.registry)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", CONTENT_TYPE_LATEST.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    def _refusal(self, scope: Scope) -> ASGIApp | None:
        if self.token is None:
            client = scope.get("client")
            if client and is_loopback(client[0]):
                return None
            return error_response(
                403, "Metrics are readable from loopback only (or set METRICS_TOKEN)"
            )
        presented = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credential = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    presented = credential.strip()
        if presented and hmac.compare_digest(presented, self.token):
            return None
        return error_response(401, "Invalid Token!", headers={"WWW-Authenticate": "Bearer"})
