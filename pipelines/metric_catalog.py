"""The one list of headline metrics: name, label, unit, direction and definition.

SQL computes the values (sql/metrics/); this catalog gives them their words, so the
report's tables and its metric appendix cannot drift apart from each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["lower", "higher", "none"]


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str
    better: Direction
    definition: str
    headline: bool = True


CATALOG: tuple[Metric, ...] = (
    Metric("p50_latency_s", "P50 latency", "s", "lower",
           "Median end-to-end latency of logical requests that completed ok (first arrival to "
           "last end), exact quantile with linear interpolation."),
    Metric("p95_latency_s", "P95 latency", "s", "lower",
           "95th percentile of the same logical-request latency."),
    Metric("p99_latency_s", "P99 latency", "s", "lower",
           "99th percentile of the same logical-request latency."),
    Metric("queue_wait_p50_s", "Queue wait P50", "s", "lower",
           "Median of start_ts - arrival_ts per attempt that started."),
    Metric("queue_wait_p95_s", "Queue wait P95", "s", "lower",
           "95th percentile of start_ts - arrival_ts per attempt that started."),
    Metric("queue_wait_max_s", "Queue wait max", "s", "lower",
           "Largest start_ts - arrival_ts of any attempt.", headline=False),
    Metric("sched_delay_p95_s", "Scheduling delay P95", "s", "lower",
           "95th percentile of dispatch_ts - arrival_ts where dispatch is known.",
           headline=False),
    Metric("burst_queue_wait_p50_s", "Burst queue wait P50", "s", "lower",
           "Median queue wait of attempts that arrived inside burst windows."),
    Metric("burst_queue_wait_p95_s", "Burst queue wait P95", "s", "lower",
           "95th percentile queue wait of attempts that arrived inside burst windows."),
    Metric("nominal_util", "Nominal GPU utilization", "share", "none",
           "Time-weighted mean of gpu_util (any kernel running) over the GPUs in scope."),
    Metric("effective_util", "Effective utilization", "share", "higher",
           "Time-weighted mean of sm_active where present; else GPU time spent on attempts "
           "that finished ok within SLA divided by GPU wall time."),
    Metric("hcl_pp", "Hidden capacity loss", "pp", "lower",
           "Nominal minus effective utilization, in percentage points."),
    Metric("timeout_drop_rate", "Timeout / drop rate", "share", "lower",
           "Logical requests whose outcome is timeout or dropped, divided by all logical "
           "requests."),
    Metric("sla_adherence", "SLA adherence", "share", "higher",
           "Logical requests with outcome ok and latency within their class's SLA target, "
           "divided by all logical requests."),
    Metric("goodput_rps", "Goodput", "req/s", "higher",
           "Logical requests meeting SLA per second of phase time."),
    Metric("goodput_rps_per_gpu", "Goodput per GPU", "req/s/GPU", "higher",
           "Goodput divided by the number of GPUs in scope.", headline=False),
    Metric("retry_amplification", "Retry amplification", "ratio", "lower",
           "Attempts divided by logical requests."),
    Metric("energy_per_good_request_j", "Energy per good request", "J", "lower",
           "Integral of GPU power over the phase divided by logical requests meeting SLA."),
    Metric("delay_index", "Delay Index (DI)", "share", "lower",
           "Sum of queue wait divided by sum of end-to-end latency over completed attempts: "
           "the share of latency spent waiting."),
    Metric("logical_requests", "Logical requests", "count", "none",
           "First attempts together with their retries.", headline=False),
    Metric("attempts", "Request attempts", "count", "none",
           "Rows of the requests table.", headline=False),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in CATALOG}
HEADLINE: tuple[Metric, ...] = tuple(m for m in CATALOG if m.headline)
