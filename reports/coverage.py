"""What this pilot's telemetry allowed the report to measure (table measurement_coverage).

Every sentence that states an absence ("none found", "no burst …") is a finding only when the
detector had its inputs. This module answers that question per item, and words the
alternative: "not tested: needs …" / "not measured: needs …". A warehouse without the table
(an older run) reads as "coverage unknown", never as "measured".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

UNKNOWN = "coverage unknown (no measurement_coverage table in this run)"
MEASURED_STATES = ("measured", "approximate", "aggregate")

# metrics_headline metric -> the coverage item that says whether it could be measured
METRIC_ITEM: dict[str, str] = {
    "p50_latency_s": "latency_quantiles", "p95_latency_s": "latency_quantiles",
    "p99_latency_s": "latency_quantiles", "queue_wait_p50_s": "queue_wait",
    "queue_wait_p95_s": "queue_wait", "queue_wait_max_s": "queue_wait",
    "sched_delay_p95_s": "queue_wait", "burst_queue_wait_p50_s": "burst_amplification",
    "burst_queue_wait_p95_s": "burst_amplification", "nominal_util": "gpu_nominal_util",
    "effective_util": "gpu_effective_util", "hcl_pp": "hidden_capacity_loss",
    "timeout_drop_rate": "retries", "sla_adherence": "sla_adherence",
    "goodput_rps": "sla_adherence", "goodput_rps_per_gpu": "sla_adherence",
    "retry_amplification": "retries", "energy_per_good_request_j": "energy_per_good_request",
    "delay_index": "delay_index", "logical_requests": "retries", "attempts": "retries",
    "gpu_power_w": "gpu_power", "gpu_energy_j": "gpu_energy",
    "gpu_mem_used_bytes": "gpu_memory", "batch_occupancy": "batch_occupancy",
    "batch_gpu_hours": "batch_occupancy", "request_rate_rps": "request_rate",
    "queue_depth_mean": "queue_depth", "queue_depth_p95": "queue_depth",
    "queue_depth_max": "queue_depth", "running_requests_mean": "running_requests",
    "preemptions_per_min": "preemptions", "ttft_p50_s": "ttft", "ttft_p95_s": "ttft",
    "tpot_p50_s": "tpot", "tpot_p95_s": "tpot",
}


class _Reader(Protocol):
    def q(self, table: str, sql: str, *params: Any) -> pl.DataFrame: ...

    def has(self, table: str) -> bool: ...


@dataclass(frozen=True)
class Item:
    item: str
    label: str
    section: str
    status: str  # measured | approximate | aggregate | not_measured
    basis: str | None
    needs: str | None
    unlocks: str | None


class Coverage:
    """measurement_coverage rows of one pilot, by item; `known` is False without the table."""

    def __init__(self, rows: Iterable[dict[str, Any]], known: bool) -> None:
        self.known = known
        self.items: dict[str, Item] = {
            r["item"]: Item(r["item"], r.get("label") or r["item"], str(r.get("section") or ""),
                            r.get("status") or "not_measured", r.get("basis"), r.get("needs"),
                            r.get("unlocks"))
            for r in rows}

    @classmethod
    def read(cls, w: _Reader) -> Coverage:
        if not w.has("measurement_coverage"):
            return cls([], known=False)
        df = w.q("measurement_coverage", "SELECT * FROM measurement_coverage WHERE pilot = ?")
        return cls(df.iter_rows(named=True), known=True)

    def get(self, item: str) -> Item | None:
        return self.items.get(item)

    def measured(self, *items: str) -> bool:
        """True only when every item's inputs were present (measured, approximate or
        aggregate). Unknown coverage or an unknown item is not measured."""
        return all((i := self.items.get(it)) is not None and i.status in MEASURED_STATES
                   for it in items)

    def exact(self, *items: str) -> bool:
        """True when every item was measured from exact rows (not histograms or aggregates)."""
        return all((i := self.items.get(it)) is not None and i.status == "measured"
                   for it in items)

    def needs(self, *items: str, exact: bool = False) -> str:
        """What would unlock the first item that is not measured, in the operator's words.
        exact: histogram (approximate) or aggregate coverage does not count (detectors that
        need per-request rows)."""
        if not self.known:
            return UNKNOWN
        ok = ("measured",) if exact else MEASURED_STATES
        for it in items:
            i = self.items.get(it)
            if i is None:
                return f"{it.replace('_', ' ')} (not in measurement_coverage)"
            if i.status not in ok:
                if i.needs:
                    return i.needs
                return (f"per-request rows (this pilot has only {i.basis})" if i.basis
                        else "per-request rows")
        return ""

    def not_tested(self, *items: str, exact: bool = False) -> str:
        """'not tested: needs …' for a detector whose inputs are missing."""
        n = self.needs(*items, exact=exact)
        return "not tested: " + (n if n == UNKNOWN else f"needs {n}")

    def not_measured(self, *items: str, exact: bool = False) -> str:
        n = self.needs(*items, exact=exact)
        return "not measured: " + (n if n == UNKNOWN else f"needs {n}")

    def for_metric(self, metric: str) -> str:
        """'not measured: needs …' for a headline metric with no value."""
        item = METRIC_ITEM.get(metric)
        if not self.known:
            return "not measured: " + UNKNOWN
        if item is None or item not in self.items:
            return "not measured: no row for it in metrics_headline"
        return self.not_measured(item)

    def missing(self) -> list[Item]:
        return [i for i in self.items.values() if i.status not in MEASURED_STATES]
