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
           "Median queue wait over every attempt: start_ts - arrival_ts for an attempt that "
           "started; for one that left without starting (dropped, abandoned, timed out in "
           "queue) its wait until it left, end_ts - arrival_ts (right-censored), or the cap "
           "when no end_ts was recorded."),
    Metric("queue_wait_p95_s", "Queue wait P95", "s", "lower",
           "95th percentile of the same queue wait (every attempt, right-censored waits "
           "included)."),
    Metric("queue_wait_max_s", "Queue wait max", "s", "lower",
           "Largest queue wait of any attempt (right-censored waits included).",
           headline=False),
    Metric("queue_wait_completed_p50_s", "Queue wait P50, attempts that started", "s",
           "lower", "Median start_ts - arrival_ts over the attempts that started only (a "
           "secondary view: it leaves out the attempts that gave up waiting).",
           headline=False),
    Metric("queue_wait_completed_p95_s", "Queue wait P95, attempts that started", "s",
           "lower", "95th percentile of start_ts - arrival_ts over the attempts that started "
           "only (secondary view, never the headline).", headline=False),
    Metric("queue_wait_censored_share", "Right-censored queue waits", "share", "lower",
           "Share of attempts that left without starting: their queue wait is counted until "
           "they left (right-censored), a lower bound of the wait they would have had.",
           headline=False),
    Metric("queue_wait_cap_s", "Queue wait cap (largest censored wait)", "s", "none",
           "Largest right-censored queue wait in scope: the queue's cap or client timeout as "
           "seen in the telemetry. Unstarted attempts without a recorded end_ts count at the "
           "pilot's longest recorded wait.", headline=False),
    Metric("sched_delay_p95_s", "Scheduling delay P95", "s", "lower",
           "95th percentile of dispatch_ts - arrival_ts where dispatch is known.",
           headline=False),
    Metric("burst_queue_wait_p50_s", "Burst queue wait P50", "s", "lower",
           "Median queue wait (every attempt, right-censored waits included) of attempts "
           "that arrived inside burst windows."),
    Metric("burst_queue_wait_p95_s", "Burst queue wait P95", "s", "lower",
           "95th percentile queue wait (every attempt, right-censored waits included) of "
           "attempts that arrived inside burst windows."),
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
    # GPU samples without requests, scheduler jobs (sql/metrics/metrics_headline.sql)
    Metric("gpu_power_w", "GPU power, mean per GPU", "W", "none",
           "Time-weighted mean of power_w over the GPUs in scope (each sample stands for the "
           "gap to the GPU's next one, capped at 5 minutes)."),
    Metric("gpu_energy_j", "GPU energy", "J", "lower",
           "Energy drawn by the GPUs in scope over the phase: the increase of the energy_j "
           "counter (sum of rises between consecutive samples, a drop counting as a reset) "
           "where it exists, else the integral of power_w over time.", headline=False),
    Metric("gpu_mem_used_bytes", "GPU memory used, mean per GPU", "B", "none",
           "Time-weighted mean of mem_used_bytes over the GPUs in scope.", headline=False),
    Metric("batch_occupancy", "Batch occupancy", "share", "none",
           "Share of pool time with at least one scheduler job running (the jobs' run "
           "intervals merged per pool and clipped to the phase), averaged over the pools that "
           "ran jobs in the pilot."),
    Metric("batch_gpu_hours", "Batch GPU-hours", "GPU-h", "none",
           "GPUs held by scheduler jobs times their run time inside the phase, over the jobs "
           "whose GPU count is known.", headline=False),
    # series metrics (Prometheus, vLLM, aggregates, traces): sql/metrics/series_metrics.sql
    Metric("request_rate_rps", "Request rate", "req/s", "none",
           "Requests per second in the phase, from the first source present: the increase of "
           "vLLM's request_success_total counter, else of a latency histogram's _count (resets "
           "handled), per second between the series' first and last sample; else arrivals of "
           "the arrival trace per second of phase time; else the time-weighted mean of the "
           "per-interval arrival_rate series (aggregate).", headline=False),
    Metric("preemptions_per_min", "Preemptions per minute", "/min", "lower",
           "Increase of vLLM's num_preemptions_total counter (resets handled) per minute "
           "between the series' first and last sample in the phase.", headline=False),
    Metric("queue_depth_mean", "Queue depth, time-weighted mean", "requests", "lower",
           "Time-weighted mean of queue_waiting (requests waiting per serving instance); each "
           "sample stands for the gap to the next one, capped at 5 minutes.", headline=False),
    Metric("queue_depth_p95", "Queue depth P95", "requests", "lower",
           "95th percentile of the queue_waiting samples in the phase.", headline=False),
    Metric("queue_depth_max", "Queue depth max", "requests", "lower",
           "Largest queue_waiting sample in the phase.", headline=False),
    Metric("running_requests_mean", "Running requests, time-weighted mean", "requests",
           "none", "Time-weighted mean of queue_running (requests being served per serving "
           "instance).", headline=False),
    Metric("ttft_p50_s", "Time to first token P50", "s", "lower",
           "Median time to first token from the ttft_s histogram buckets (approximate).",
           headline=False),
    Metric("ttft_p95_s", "Time to first token P95", "s", "lower",
           "95th percentile time to first token from the ttft_s histogram buckets "
           "(approximate).", headline=False),
    Metric("tpot_p50_s", "Time per output token P50", "s", "lower",
           "Median time per output token from the tpot_s histogram buckets (approximate).",
           headline=False),
    Metric("tpot_p95_s", "Time per output token P95", "s", "lower",
           "95th percentile time per output token from the tpot_s histogram buckets "
           "(approximate).", headline=False),
    Metric("queue_time_agg_mean_s", "Queue time, mean of per-interval means", "s", "lower",
           "Time-weighted mean of the per-interval series queue_time_mean_s (aggregate: not a "
           "per-request quantile).", headline=False),
    Metric("e2e_latency_agg_mean_s", "E2E latency, mean of per-interval means", "s", "lower",
           "Time-weighted mean of the per-interval series e2e_latency_mean_s (aggregate).",
           headline=False),
    Metric("e2e_latency_agg_p95_s", "E2E latency, mean of per-interval P95s", "s", "lower",
           "Time-weighted mean of the per-interval series e2e_latency_p95_s (aggregate: not "
           "the P95 of requests).", headline=False),
    Metric("model_latency_agg_p95_s", "Model latency, mean of per-interval P95s", "s",
           "lower", "Time-weighted mean of the per-interval series model_latency_p95_s "
           "(aggregate: not the P95 of requests).", headline=False),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in CATALOG}
HEADLINE: tuple[Metric, ...] = tuple(m for m in CATALOG if m.headline)
