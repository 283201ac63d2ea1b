"""Prometheus metrics of the media server (prometheus-client, one registry per app)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)


class Metrics:
    """The server's counters; ``render()`` gives the Prometheus text exposition format."""

    def __init__(self, queue_depth: Callable[[], float] | None = None) -> None:
        r = self.registry = CollectorRegistry()
        self.peers = Gauge("callscribe_peers", "WebRTC calls connected now", registry=r)
        self.peers_total = Counter("callscribe_peers_accepted", "calls accepted", registry=r)
        self.refused = Counter("callscribe_offers_refused", "offers refused", ["reason"], registry=r)
        self.utterances = Counter("callscribe_utterances", "final results delivered", registry=r)
        self.partials = Counter("callscribe_partials", "partial results delivered", registry=r)
        self.decode_latency = Histogram(
            "callscribe_decode_latency_seconds", "endpoint decision to final result", buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.gap_seconds = Counter("callscribe_gap_fill_seconds", "silence inserted for lost packets", registry=r)
        self.late_frames = Counter("callscribe_late_frames", "frames dropped for going back in time", registry=r)
        self.protocol_errors = Counter("callscribe_protocol_errors", "bad data-channel messages", ["code"],
                                       registry=r)
        self.redirected = Counter("callscribe_offers_redirected", "offers sent to another node (307)", registry=r)
        self.sse_viewers = Gauge("callscribe_sse_viewers", "room viewers following over server-sent events now",
                                 registry=r)
        self.sse_dropped = Counter("callscribe_sse_viewers_dropped", "server-sent-event viewers dropped for "
                                   "falling behind", registry=r)
        self.queue_depth = Gauge("callscribe_queue_depth", "model jobs waiting for a worker", registry=r)
        if queue_depth is not None:
            self.queue_depth.set_function(queue_depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
