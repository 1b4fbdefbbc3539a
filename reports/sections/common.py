"""Shared pieces of the generic report sections: the reader protocol, pattern names,
interval wording and small cell formatters."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import polars as pl

from pipelines.metric_catalog import Metric
from reports import fmt
from reports.types import Part, Table


class Reader(Protocol):
    pilot: str

    def q(self, table: str, sql: str, *params: Any) -> pl.DataFrame: ...

    def has(self, table: str) -> bool: ...

    def cols(self, table: str) -> set[str]: ...


PATTERNS: dict[str, tuple[str, str]] = {
    # pattern -> (label, the headline metric a reader checks it against)
    "batch_scheduling_conflict": ("Batch scheduling conflict", "queue_wait_p95_s"),
    "burst_amplification": ("Burst amplification", "burst_queue_wait_p95_s"),
    "priority_inversion": ("Resource locking / priority inversion", "p95_latency_s"),
    "idle_overload_oscillation": ("Idle–overload oscillation", "sla_adherence"),
    "retry_timeout_amplification": ("Retry / timeout amplification", "retry_amplification"),
    "energy_latency_mismatch": ("Energy–latency mismatch", "energy_per_good_request_j"),
    "non_productive_queue_waiting": ("Non-productive queue waiting", "delay_index"),
    "hidden_gpu_occupancy_loss": ("Hidden GPU occupancy loss", "hcl_pp"),
    "legitimate_vs_amplifying_queueing": ("Legitimate vs amplifying queueing",
                                          "queue_wait_p95_s"),
}
SEVERITY_RANK = {"high": 3, "medium": 2, "low": 1}


def pattern_label(p: str) -> str:
    return PATTERNS.get(p, (p.replace("_", " ").capitalize(), ""))[0]


def pattern_anchor(p: str) -> str:
    return "ev-" + re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-")


def not_in_run(what: str) -> Part:
    return Part(paragraphs=[f"Not in this run: {what}."])


# ---------------------------------------------------------------------------------------------
# Confidence intervals (metrics_ci, pipelines/statistics.py)


def ci_index(w: Reader) -> dict[tuple[str, str], dict[str, Any]]:
    df = w.q("metrics_ci", "SELECT * FROM metrics_ci WHERE pilot = ?")
    return {(r["segment"], r["metric"]): r for r in df.iter_rows(named=True)}


def change_text(r: dict[str, Any] | None, m: Metric) -> str:
    """Change with its interval: relative for latencies/rates/energy, pp for shares."""
    if r is None:
        return "—"
    unit = m.unit
    if unit in ("share", "pp"):
        return fmt.two_lines(fmt.change(r.get("change"), unit),
                             fmt.change_interval(r.get("change_lo"), r.get("change_hi"), unit))
    return fmt.two_lines(fmt.rel(r.get("rel_change")),
                         fmt.rel_interval(r.get("rel_change_lo"), r.get("rel_change_hi")))


def printed_interval(r: dict[str, Any], m: Metric, key: str = "significant") -> str:
    """The interval text the report prints for a change (key 'significant') or a DiD
    (key 'did_significant'): the one a significance claim must agree with."""
    if key == "did_significant":
        return fmt.change_interval(r.get("did_lo"), r.get("did_hi"), m.unit)
    if m.unit in ("share", "pp"):
        return fmt.change_interval(r.get("change_lo"), r.get("change_hi"), m.unit)
    return fmt.rel_interval(r.get("rel_change_lo"), r.get("rel_change_hi"))


def is_significant(r: dict[str, Any] | None, m: Metric,
                   key: str = "significant") -> bool | None:
    """The pipeline's significance flag, kept only where the PRINTED interval excludes zero
    (an interval printed as [−43.8 pp, −0.0 pp] is not called significant). None: no test."""
    if r is None or r.get(key) is None:
        return None
    if not r[key]:
        return False
    lo, hi = (("did_lo", "did_hi") if key == "did_significant" else
              ("change_lo", "change_hi") if m.unit in ("share", "pp") else
              ("rel_change_lo", "rel_change_hi"))
    return bool(fmt.excludes_zero(r.get(lo), r.get(hi), printed_interval(r, m, key)))


def did_text(r: dict[str, Any] | None, m: Metric) -> str:
    if r is None:
        return "—"
    return fmt.two_lines(fmt.change(r.get("did"), m.unit),
                         fmt.change_interval(r.get("did_lo"), r.get("did_hi"), m.unit))


def direction(r: dict[str, Any] | None, m: Metric, key: str = "change") -> str:
    """'improved' / 'worsened' / 'changed' for a significant change; '' otherwise."""
    if r is None or r.get(key) is None:
        return ""
    v = r[key]
    if m.better == "none" or v == 0:
        return "changed"
    return "improved" if (v < 0) == (m.better == "lower") else "worsened"



def change_words(r: dict[str, Any], m: Metric, key: str) -> str:
    unit = m.unit
    if r.get("significant") is None:
        return f"moved from {fmt.value(r['baseline'], unit)} to " \
               f"{fmt.value(r['validation'], unit)} (no interval)"
    span = (fmt.change_interval(r["change_lo"], r["change_hi"], unit) if unit in ("share", "pp")
            else fmt.rel_interval(r["rel_change_lo"], r["rel_change_hi"]))
    amount = (fmt.change(r["change"], unit) if unit in ("share", "pp")
              else fmt.rel(r["rel_change"]))
    if not is_significant(r, m):
        return (f"showed no significant change ({fmt.value(r['baseline'], unit)} → "
                f"{fmt.value(r['validation'], unit)}, change {amount} {span})")
    return (f"{direction(r, m)} significantly ({fmt.value(r['baseline'], unit)} → "
            f"{fmt.value(r['validation'], unit)}, change {amount} {span})")



def num(v: float | None) -> str:
    return "—" if v is None else f"{v:,.2f}"


def first_table(w: Reader, names: Sequence[str]) -> str | None:
    return next((n for n in names if w.has(n)), None)


def generic_table(d: pl.DataFrame, caption: str, limit: int = 12) -> Table:
    cols = [c for c in d.columns if c != "pilot"]
    rows = [[cell(r[c]) for c in cols] for r in d.head(limit).iter_rows(named=True)]
    return Table(caption, [c.replace("_", " ") for c in cols], rows,
                 note=f"{d.height - limit} more rows not shown." if d.height > limit else "")


def cell(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3g}"
    if hasattr(v, "strftime"):
        return fmt.ts(v)
    return str(v)


