"""Section 2: the baseline operating state, overall, by pool and by priority class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.metric_catalog import CATALOG, HEADLINE, Metric
from reports import fmt
from reports.cells import bases, basis_text, has_value, label_of, metric_of, metric_text
from reports.coverage import Coverage
from reports.types import Table

POOLS_PER_TABLE = 5  # pool columns per breakdown table: keeps A4 tables unclipped


@dataclass
class Baseline:
    available: bool
    overall: Table
    by_pool: list[Table]
    by_priority: Table
    reading: str


# A per-class value of a GPU metric is the class's part of all GPU time, not a utilization.
BREAKDOWN_LABELS = {
    ("priority", "effective_util"): "Productive GPU time of this class, as a share of all "
                                    "GPU time",
}


def _breakdown_table(hx: dict, caption: str, breakdown: str, values: list[str],
                     metrics: Sequence[Metric], phase: str, cov: Coverage) -> Table:
    rows = []
    cells = []
    for m in metrics:
        row = [BREAKDOWN_LABELS.get((breakdown, m.name), m.label)]
        overall = has_value(hx.get((phase, "all", "overall", None, m.name)))
        for v in values:
            cell = hx.get((phase, "all", breakdown, v, m.name))
            cells.append(cell)
            if cell and not has_value(cell) and overall:
                # measured for the pilot, just not divisible by this breakdown: not "missing
                # telemetry" (which would contradict the overall value)
                row.append(f"not split by {breakdown}")
            else:
                row.append(metric_text(cell, m, cov) if cell else "—")
        rows.append(row)
    return Table(caption, ["Metric", *values], rows, basis=bases(cells),
                 num_cols=tuple(range(1, len(values) + 1)))


def _shown_metrics(hx: dict, phase: str, breakdown: str) -> list[Metric]:
    """Headline metrics first (catalog order), then every further metric metrics_headline
    has for this phase and breakdown (series, GPU-only and scheduler metrics, new names)."""
    present = {k[4]: r for k, r in hx.items() if k[0] == phase and k[1] == "all"
               and k[2] == breakdown}
    order = {m.name: i for i, m in enumerate(CATALOG)}
    extra = sorted((n for n in present if n not in {m.name for m in HEADLINE}),
                   key=lambda n: (order.get(n, len(order)), n))
    if breakdown == "overall":
        return [*HEADLINE, *(metric_of(n, present[n]) for n in extra)]
    # per pool / class: only metrics with at least one value (no rows of dashes)
    with_value = {k[4] for k, r in hx.items() if k[0] == phase and k[1] == "all"
                  and k[2] == breakdown and r.get("value") is not None}
    return [m for m in (*HEADLINE, *(metric_of(n, present[n]) for n in extra))
            if m.name in with_value]


def baseline(hx: dict, cov: Coverage) -> Baseline:
    phase = "baseline"
    overall_rows, cells = [], []
    for m in _shown_metrics(hx, phase, "overall"):
        cell = hx.get((phase, "all", "overall", None, m.name))
        cells.append(cell)
        overall_rows.append([label_of(m, cell), metric_text(cell, m, cov), basis_text(cell)])
    overall = Table("Metrics, baseline phase, all traffic (metrics_headline)",
                    ["Metric", "Value", "Basis"], overall_rows, basis=bases(cells),
                    num_cols=(1,), wrap_cols=(2,),
                    note="Basis: measured = exact, from rows; approximate = from histogram "
                         "buckets; aggregate = from pre-aggregated per-interval series, never "
                         "a per-request quantile.")
    pools = sorted({k[3] for k in hx if k[0] == phase and k[2] == "pool"})
    prios = sorted({k[3] for k in hx if k[0] == phase and k[2] == "priority"})
    pool_metrics = _shown_metrics(hx, phase, "pool")
    by_pool = [
        _breakdown_table(hx, f"Baseline by pool ({i // POOLS_PER_TABLE + 1} of "
                         f"{-(-len(pools) // POOLS_PER_TABLE)})"
                         if len(pools) > POOLS_PER_TABLE else "Baseline by pool",
                         "pool", pools[i:i + POOLS_PER_TABLE], pool_metrics, phase, cov)
        for i in range(0, len(pools), POOLS_PER_TABLE)] if pool_metrics else []
    prio_metrics = _shown_metrics(hx, phase, "priority")
    by_priority = _breakdown_table(hx, "Baseline by priority class, all traffic (GPU "
                                   "metrics are per GPU; a class's productive GPU time is its "
                                   "share of all GPU time)", "priority", prios,
                                   prio_metrics, phase, cov)
    if not prios or not prio_metrics:
        by_priority.rows = []
        by_priority.empty = ("No per-class values in metrics_headline for the baseline phase"
                             + (f" ({cov.not_measured('latency_quantiles')})."
                                if not cov.measured("latency_quantiles") else "."))
    return Baseline(bool(hx), overall, by_pool, by_priority, _baseline_reading(hx, cov))


def _baseline_reading(hx: dict, cov: Coverage) -> str:
    def row(n: str) -> dict[str, Any] | None:
        r = hx.get(("baseline", "all", "overall", None, n))
        return r if has_value(r) else None

    p50, p99, nom, eff = (row(n) for n in ("p50_latency_s", "p99_latency_s", "nominal_util",
                                           "effective_util"))
    parts, missing = [], []
    if p50 and p99 and p50["value"]:
        how = " (approximate: histogram buckets)" if "approximate" in (
            p50.get("basis"), p99.get("basis")) else ""
        parts.append(f"P99 latency was {p99['value'] / p50['value']:.1f}× the median "
                     f"({fmt.value(p99['value'], 's')} vs {fmt.value(p50['value'], 's')})"
                     + how)
    elif cov.measured("latency_quantiles"):
        item = cov.get("latency_quantiles")
        missing.append("latency is known only from " + (item.basis if item and item.basis
                                                        else "aggregates")
                       + ", so no per-request spread (P99 ÷ P50) is stated")
    else:
        missing.append("the latency spread is " + cov.not_measured("latency_quantiles"))
    if nom and eff:
        parts.append(f"nominal GPU utilization was {fmt.value(nom['value'], 'share')} "
                     f"against {fmt.value(eff['value'], 'share')} effective")
    elif nom:
        parts.append(f"nominal GPU utilization was {fmt.value(nom['value'], 'share')}"
                     + (" (aggregate: from per-interval series)"
                        if nom.get("basis") == "aggregate" else ""))
        missing.append("effective utilization is " + cov.not_measured("gpu_effective_util"))
    else:
        missing.append("GPU utilization is " + cov.not_measured("gpu_nominal_util"))
    rate = row("request_rate_rps")
    if rate:
        parts.append(f"requests arrived at {fmt.value(rate['value'], 'req/s')} "
                     f"({rate.get('basis') or 'measured'})")
    text = ("In the baseline phase " + "; ".join(parts) + ".") if parts else ""
    if missing:
        joined = "; ".join(missing)
        text += (" " if text else "") + joined[:1].upper() + joined[1:] + "."
    return text

