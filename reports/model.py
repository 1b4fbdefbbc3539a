"""The report's data model: everything the template shows, read from the warehouse and formatted.

The template only displays; every number, sentence and choice is made here, from the tables the
pipeline built. This module only reads (plain SELECTs) and never computes a metric: where a
number is not in the tables it is printed as missing, never derived on the side.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

from pipelines.metric_catalog import BY_NAME, CATALOG, HEADLINE, Metric
from reports import charts, fmt, sections, visuals
from reports.charts import Chart
from reports.coverage import Coverage
from reports.types import Finding, Part, Section, Table

REPORT_TITLE = "Operational synchronization report"
POOLS_PER_TABLE = 5  # pool columns per breakdown table: keeps A4 tables unclipped


# Thresholds the report's own rules use. The first names are looked up in the pilot's
# `thresholds` table (which holds METRICS.md defaults and pilot overrides); the default applies
# only when the table has none of the names, and the appendix says which source was used.
@dataclass(frozen=True)
class Rule:
    key: str
    names: tuple[str, ...]
    default: float
    meaning: str


RULES: tuple[Rule, ...] = (
    Rule("di", ("di", "di_threshold", "delay_index"), 0.5,
         "Delay Index above which queue waiting is called non-productive (METRICS.md)"),
    Rule("hcl_pp", ("hcl_pp", "hcl_threshold_pp", "hcl"), 10.0,
         "hidden capacity loss (pp) above which GPU occupancy loss is reported (METRICS.md)"),
    Rule("burst_wait_ratio", ("burst_wait_ratio",), 2.0,
         "burst queue-wait P95 ÷ overall queue-wait P95 above which bursts amplify waiting"),
    Rule("retry_amplification_max", ("retry_amplification_max",), 1.10,
         "attempts per logical request above which retries amplify load"),
    Rule("timeout_rate_max", ("timeout_rate_max",), 0.02,
         "timeout/drop rate above which timeouts are reported"),
    Rule("sla_adherence_target", ("sla_adherence_target", "sla_target"), 0.95,
         "SLA adherence below which the pilot misses its target"),
    Rule("compute_saturation_util", ("compute_saturation_util",), 0.85,
         "effective utilization at or above which GPUs count as productively saturated"),
)


@dataclass
class Executive:
    objective: str
    period: str
    headline: Table
    findings: list[Finding]
    findings_note: str
    not_evaluated: list[str]
    conclusion: str


@dataclass
class Environment:
    sources: Table
    quarantine: Table
    spans: Table
    table_rows: Table
    inventory: Table
    mix_class: Table
    mix_priority: Table
    jobs: Table


@dataclass
class Baseline:
    available: bool
    overall: Table
    by_pool: list[Table]
    by_priority: Table
    reading: str


@dataclass
class ValidationRun:
    phases: Table
    scope: str
    treatment_share: Table
    adjustments: list[str]


@dataclass
class Results:
    available: bool
    tables: list[Table]
    did: Table | None
    sentences: list[str]
    intro: str = ""
    predicted_note: str = ""


@dataclass
class Provenance:
    pilot: str
    title: str
    files: Table
    pipeline_version: str
    run_id: str
    generated_at: str
    tables_read: list[str]


@dataclass
class ReportModel:
    pilot: str
    pilot_title: str
    report_title: str
    running_header: str
    sections: list[Section]
    executive: Executive
    environment: Environment
    baseline: Baseline
    validation: ValidationRun
    results: Results
    charts: list[Chart]
    metric_defs: Table
    thresholds: Table
    methodology: list[str]
    provenance: Provenance
    bodies: dict[str, list[Part]]  # generic sections by anchor: numbered parts
    has_modeled: bool = False


# ---------------------------------------------------------------------------------------------
# Reading


class _Warehouse:
    """Plain SELECTs against one pilot; a table the pipeline has not built yet reads as empty."""

    def __init__(self, con: duckdb.DuckDBPyConnection, pilot: str) -> None:
        self.con = con
        self.pilot = pilot
        names = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        self.tables = {n for (n,) in names}
        self.read: list[str] = []

    def has(self, table: str) -> bool:
        return table in self.tables

    def cols(self, table: str) -> set[str]:
        """Column names of `table` (empty when it does not exist): readers adapt to shapes."""
        if not self.has(table):
            return set()
        return {c for (c,) in self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
            [table]).fetchall()}

    def q(self, table: str, sql: str, *params: Any) -> pl.DataFrame:
        """Run `sql` (which reads `table`, filtered by `pilot = ?` first) or return empty."""
        if not self.has(table):
            return pl.DataFrame()
        if table not in self.read:
            self.read.append(table)
        return self.con.execute(sql, [self.pilot, *params]).pl()


def _headline_index(df: pl.DataFrame) -> dict[tuple, dict[str, Any]]:
    if df.is_empty():
        return {}
    return {(r["phase"], r["segment"], r["breakdown"], r["breakdown_value"], r["metric"]): r
            for r in df.iter_rows(named=True)}


def metric_of(name: str, row: dict[str, Any] | None = None) -> Metric:
    """The catalog entry of a metric, or plain words for a name the catalog does not know yet
    (a model may add a metric before its words reach pipelines.metric_catalog)."""
    if name in BY_NAME:
        return BY_NAME[name]
    return Metric(name, name.replace("_", " ").strip().capitalize(), (row or {}).get("unit")
                  or "", "none", "not in pipelines.metric_catalog yet", headline=False)


def _metric_text(row: dict[str, Any] | None, metric: Metric, cov: Coverage) -> str:
    if row is None:
        return cov.for_metric(metric.name)
    if row["value"] is None:
        why = row.get("note") or ""
        if why.startswith(fmt.NOT_MEASURED):
            return why
        return f"{fmt.NOT_MEASURED} — {why}" if why else cov.for_metric(metric.name)
    return fmt.value(row["value"], row.get("unit") or metric.unit)


def _has_value(row: dict[str, Any] | None) -> bool:
    return bool(row) and row.get("value") is not None  # type: ignore[union-attr]


def _label(metric: Metric, row: dict[str, Any] | None = None) -> str:
    """The metric's words, saying how it was obtained when that is not exact rows."""
    if not _has_value(row):
        return metric.label
    assert row is not None
    note, basis = row.get("note") or "", row.get("basis") or ""
    # effective utilization names which source it used (sm_active vs productive-time)
    if metric.name == "effective_util" and note:
        return f"{metric.label} ({note})"
    if basis == "approximate" or note.startswith("approximate"):
        return f"{metric.label} (approximate: histogram buckets)"
    if basis == "aggregate":
        # "mean of per-interval P95s" is already in the label of a series metric
        return (f"{metric.label} (aggregate)" if "per-interval" in metric.label
                else f"{metric.label} (aggregate: from per-interval series)")
    return metric.label


def _basis_text(row: dict[str, Any] | None) -> str:
    """Basis column: the row's basis and, when the note says how, how it was computed."""
    if not _has_value(row):
        return "—"
    assert row is not None
    note = row.get("note") or ""
    basis = row.get("basis") or "measured"
    how = note.split(": ", 1)[1] if note.startswith(basis + ": ") else note
    return f"{basis} — {how}" if how else basis


def _bases(rows: Sequence[dict[str, Any] | None]) -> str:
    found = sorted({r.get("basis") or "measured" for r in rows if _has_value(r)})
    return ", ".join(found) if found else "measured"


# ---------------------------------------------------------------------------------------------
# Sections


def _thresholds(w: _Warehouse) -> tuple[dict[str, float], Table]:
    df = w.q("thresholds", "SELECT name, value FROM thresholds WHERE pilot = ? ORDER BY name")
    table_vals = {r["name"]: r["value"] for r in df.iter_rows(named=True)}
    used: dict[str, float] = {}
    rows: list[list[str]] = []
    rule_names = {n for rule in RULES for n in rule.names}
    for rule in RULES:
        hit = next((n for n in rule.names if n in table_vals), None)
        used[rule.key] = table_vals[hit] if hit else rule.default
        source = f"thresholds table ({hit})" if hit else "report default (v1)"
        rows.append([rule.key, f"{used[rule.key]:g}", rule.meaning, source])
    for name, val in table_vals.items():
        if name not in rule_names:
            rows.append([name, f"{val:g}", "pipeline threshold (METRICS.md)", "thresholds table"])
    return used, Table("Thresholds in force for this report", ["Name", "Value", "Used for",
                                                                "Source"], rows, basis=None,
                       num_cols=(1,))


def _environment(w: _Warehouse, cov: Coverage) -> Environment:
    src = w.q("ingest_log", """SELECT source_index, source_kind, target_table, file, sha256,
                rows_in, rows_stored, rows_quarantined FROM ingest_log WHERE pilot = ?
                ORDER BY source_index, file""")
    src_rows = [[str(r["source_index"]), r["source_kind"], r["target_table"] or "—", r["file"],
                 r["sha256"][:12] + "…", fmt.count(r["rows_in"]), fmt.count(r["rows_stored"]),
                 fmt.count(r["rows_quarantined"])] for r in src.iter_rows(named=True)]
    if src_rows:
        src_rows.append(["", "all sources", "", f"{src.height} files", "",
                         fmt.count(src["rows_in"].sum()), fmt.count(src["rows_stored"].sum()),
                         fmt.count(src["rows_quarantined"].sum())])
    sources = Table("Telemetry sources (ingest log; full checksums in the provenance block)",
                    ["#", "Kind", "Table", "File", "sha256", "Rows in", "Stored",
                     "Quarantined"], src_rows, basis=None, num_cols=(5, 6, 7), wrap_cols=(3,),
                    empty="No ingest log rows for this pilot.")

    qdf = w.q("quarantine", """SELECT coalesce(target_table, '—') AS t, reason, count(*) AS n
                FROM quarantine WHERE pilot = ? GROUP BY ALL ORDER BY n DESC, reason""")
    quarantine = Table("Quarantined rows by reason", ["Target table", "Reason", "Rows"],
                       [[r["t"], r["reason"], fmt.count(r["n"])] for r in qdf.iter_rows(
                           named=True)], basis=None, num_cols=(2,),
                       empty="No rows were quarantined.")

    spans: list[list[str]] = []
    for label, table, lo, hi in (
            ("Phases", "phases", "min(start_ts)", "max(end_ts)"),
            ("Requests (per-request rows)", "requests", "min(arrival_ts)", "max(arrival_ts)"),
            ("Arrival trace (arrivals)", "arrivals", "min(ts)", "max(ts)"),
            ("Time-series samples", "samples", "min(ts)", "max(ts)"),
            ("Scheduler jobs", "jobs", "min(submit_ts)", "max(coalesce(end_ts, submit_ts))")):
        d = w.q(table, f"SELECT {lo} AS lo, {hi} AS hi FROM {table} WHERE pilot = ?")
        if d.is_empty() or d["lo"][0] is None:
            spans.append([label, "—", "—", "no rows"])
        else:
            spans.append([label, fmt.ts(d["lo"][0]), fmt.ts(d["hi"][0]),
                          fmt.duration(d["hi"][0] - d["lo"][0])])
    span_table = Table("Time span covered", ["Data", "From", "To", "Span"], spans, basis=None)

    counts = []
    for t in ("requests", "arrivals", "jobs", "samples", "quarantine", "ingest_log", "phases",
              "sla_targets", "thresholds"):
        d = w.q(t, f"SELECT count(*) AS n FROM {t} WHERE pilot = ?")
        counts.append([t, "table not built" if d.is_empty() else fmt.count(d["n"][0])])
    table_rows = Table("Rows per staging table", ["Table", "Rows"], counts, basis=None,
                       num_cols=(1,))

    # pools, nodes and GPUs from every table that names them (requests, samples, jobs)
    where = [f"SELECT pool, node, gpu FROM {t} WHERE pilot = $1" for t in ("requests", "samples")
             if w.has(t)]
    if w.has("jobs"):
        where.append("SELECT pool, node, NULL AS gpu FROM jobs WHERE pilot = $1")
    inv = w.q("phases", f"""
        WITH g AS ({" UNION ALL ".join(where)})
        SELECT (SELECT count(DISTINCT pool) FROM g) AS pools,
               (SELECT count(DISTINCT node) FROM g) AS nodes,
               (SELECT count(DISTINCT (node, gpu)) FROM g WHERE gpu IS NOT NULL) AS gpus,
               (SELECT string_agg(DISTINCT pool, ', ' ORDER BY pool) FROM g) AS pool_names
        """) if where else pl.DataFrame()
    prios = w.q("requests", "SELECT string_agg(DISTINCT priority, ', ' ORDER BY priority) AS p "
                            "FROM requests WHERE pilot = ?")
    arr = w.q("arrivals", "SELECT count(*) AS n, string_agg(DISTINCT source, ', ') AS src "
                          "FROM arrivals WHERE pilot = ?")
    inv_rows: list[list[str]] = []
    if not inv.is_empty():
        r = inv.row(0, named=True)
        p = prios["p"][0] if not prios.is_empty() else None
        inv_rows = [["Pools", fmt.count(r["pools"]), r["pool_names"] or "—"],
                    ["Nodes", fmt.count(r["nodes"]), "requests, samples and jobs"],
                    ["GPUs", fmt.count(r["gpus"]), "distinct (node, gpu) in requests and "
                     "samples"],
                    ["Priority classes", str(len(p.split(", "))) if p else "0",
                     p or "— (no per-request rows)"]]
    if not arr.is_empty() and arr["n"][0]:
        inv_rows.append(["Arrivals (trace)", fmt.count(arr["n"][0]),
                         f"arrival trace ({arr['src'][0] or 'source not named'}): timestamps "
                         "and token counts only, no pool, node or GPU"])
    inventory = Table("Inventory (distinct values in the staging tables)",
                      ["Entity", "Count", "Values / source"], inv_rows, basis=None,
                      num_cols=(1,), empty="No requests, arrivals, samples or jobs for this "
                                           "pilot.")

    def mix(col: str, caption: str) -> Table:
        d = w.q("requests", f"""SELECT {col} AS k, count(*) AS attempts,
                    count(*) FILTER (WHERE attempt = 0) AS first
                    FROM requests WHERE pilot = ? GROUP BY ALL ORDER BY attempts DESC, k""")
        tot = float(d["attempts"].sum()) if not d.is_empty() else 0.0
        return Table(caption, [col.replace("_", " ").capitalize(), "Attempts",
                               "First attempts", "Share of attempts"],
                     [[r["k"], fmt.count(r["attempts"]), fmt.count(r["first"]),
                       fmt.share(r["attempts"], tot)] for r in d.iter_rows(named=True)],
                     basis=None, num_cols=(1, 2, 3),
                     empty=f"No per-request rows (requests): the mix by {col.replace('_', ' ')} "
                           "is not measured.")

    return Environment(sources, quarantine, span_table, table_rows, inventory,
                       mix("model_class", "Workload mix by model class"),
                       mix("priority", "Workload mix by priority class"), _jobs_table(w))


def _jobs_table(w: _Warehouse) -> Table:
    """The scheduler jobs sharing the GPUs, per pool and phase (job_timeline)."""
    jt = w.q("job_timeline", """SELECT coalesce(pool, '(no pool)') AS pool,
                coalesce(phase, '(outside the phases)') AS phase, count(*) AS jobs,
                count(*) FILTER (WHERE start_ts IS NOT NULL) AS started,
                count(*) FILTER (WHERE NOT end_known AND start_ts IS NOT NULL) AS running,
                median(wait_s) AS wait_p50, max(duration_s) AS longest,
                sum(gpu_hours) AS gpu_hours, count(gpu_hours) AS with_gpus
                FROM job_timeline WHERE pilot = ? GROUP BY ALL ORDER BY 1, 2""")
    rows = [[r["pool"], r["phase"], fmt.count(r["jobs"]), fmt.count(r["started"]),
             fmt.count(r["running"]),
             "—" if r["wait_p50"] is None else fmt.long_duration(r["wait_p50"]),
             "—" if r["longest"] is None else fmt.long_duration(r["longest"]),
             "not measured: needs GPU counts (AllocTRES gres/gpu)" if not r["with_gpus"]
             else f"{r['gpu_hours']:,.1f}"] for r in jt.iter_rows(named=True)]
    return Table("Scheduler jobs sharing the GPUs, by pool and the phase each started in "
                 "(job_timeline)",
                 ["Pool", "Phase", "Jobs", "Started", "Still running", "Wait P50",
                  "Longest run", "GPU-hours"], rows, num_cols=(2, 3, 4, 5, 6, 7),
                 empty="No scheduler jobs (jobs): batch occupancy and the job timeline are not "
                       "measured; they need a sacct export.")


def _breakdown_table(hx: dict, caption: str, breakdown: str, values: list[str],
                     metrics: Sequence[Metric], phase: str, cov: Coverage) -> Table:
    rows = []
    cells = []
    for m in metrics:
        row = [m.label]
        for v in values:
            cell = hx.get((phase, "all", breakdown, v, m.name))
            cells.append(cell)
            row.append(_metric_text(cell, m, cov) if cell else "—")
        rows.append(row)
    return Table(caption, ["Metric", *values], rows, basis=_bases(cells),
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


def _baseline(hx: dict, cov: Coverage) -> Baseline:
    phase = "baseline"
    overall_rows, cells = [], []
    for m in _shown_metrics(hx, phase, "overall"):
        cell = hx.get((phase, "all", "overall", None, m.name))
        cells.append(cell)
        overall_rows.append([_label(m, cell), _metric_text(cell, m, cov), _basis_text(cell)])
    overall = Table("Metrics, baseline phase, all traffic (metrics_headline)",
                    ["Metric", "Value", "Basis"], overall_rows, basis=_bases(cells),
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
    by_priority = _breakdown_table(hx, "Baseline by priority class (GPU metrics are per GPU, "
                                   "not per class, and are omitted)", "priority", prios,
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
        return r if _has_value(r) else None

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


def _findings(hx: dict, th: dict[str, float]) -> tuple[list[Finding], list[str], int]:
    """Threshold rules on baseline headline metrics, ranked by exceedance (see appendix B)."""
    def v(name: str) -> float | None:
        return (hx.get(("baseline", "all", "overall", None, name)) or {}).get("value")

    found: list[Finding] = []
    skipped: list[str] = []
    n_rules = 0
    share, sec = (lambda x: fmt.value(x, "share")), (lambda x: fmt.value(x, "s"))

    def rule(title: str, names: tuple[str, ...], fires: Callable[..., bool],
             severity: Callable[..., float], sentence: Callable[..., str]) -> None:
        nonlocal n_rules
        n_rules += 1
        vals = [v(n) for n in names]
        if any(x is None for x in vals):
            missing = ", ".join(BY_NAME[n].label for n, x in zip(names, vals, strict=True)
                                if x is None)
            skipped.append(f"{title}: not evaluated, {missing} not measured")
        elif fires(*vals):
            found.append(Finding(title, sentence(*vals), BY_NAME[names[0]].label,
                                 severity(*vals)))

    rule("Non-productive queue waiting", ("delay_index",), lambda d: d > th["di"],
         lambda d: d / th["di"],
         lambda d: f"{share(d)} of completed attempts' end-to-end latency was queue waiting "
                   f"(DI {d:.2f} > threshold {th['di']:.2f}).")
    rule("Hidden GPU occupancy loss", ("hcl_pp", "nominal_util", "effective_util"),
         lambda h, n, e: h > th["hcl_pp"], lambda h, n, e: h / th["hcl_pp"],
         lambda h, n, e: f"GPUs were nominally busy {share(n)} of the time but effectively "
                         f"{share(e)}: a hidden loss of {fmt.value(h, 'pp')} (threshold "
                         f"{th['hcl_pp']:g} pp).")
    rule("Burst amplification of queue wait", ("burst_queue_wait_p95_s", "queue_wait_p95_s"),
         lambda b, q: q > 0 and b / q > th["burst_wait_ratio"],
         lambda b, q: (b / q) / th["burst_wait_ratio"],
         lambda b, q: f"Attempts arriving in burst windows waited {sec(b)} at P95, "
                      f"{b / q:.1f}× the overall queue-wait P95 of {sec(q)} (threshold "
                      f"{th['burst_wait_ratio']:g}×).")
    rule("Retry amplification", ("retry_amplification",),
         lambda r: r > th["retry_amplification_max"],
         lambda r: (r - 1) / max(th["retry_amplification_max"] - 1, 1e-9),
         lambda r: f"Each logical request took {r:.2f} attempts on average, "
                   f"{share(r - 1)} extra load from retries (threshold "
                   f"{th['retry_amplification_max']:.2f}).")
    rule("Timeouts and drops", ("timeout_drop_rate",), lambda t: t > th["timeout_rate_max"],
         lambda t: t / th["timeout_rate_max"],
         lambda t: f"{share(t)} of logical requests ended in a timeout or drop (threshold "
                   f"{share(th['timeout_rate_max'])}).")
    rule("SLA adherence below target", ("sla_adherence",),
         lambda a: a < th["sla_adherence_target"],
         lambda a: (1 - a) / max(1 - th["sla_adherence_target"], 1e-9),
         lambda a: f"{share(a)} of logical requests met their class's latency target, below "
                   f"the {share(th['sla_adherence_target'])} target.")
    found.sort(key=lambda f: -f.severity)
    return found, skipped, n_rules


def _conclusion(hx: dict, th: dict[str, float]) -> str:
    """Scheduling- vs compute-limited, from baseline DI, HCL and utilization (appendix B)."""
    def v(name: str) -> float | None:
        return (hx.get(("baseline", "all", "overall", None, name)) or {}).get("value")

    di, hcl, eff, nom = v("delay_index"), v("hcl_pp"), v("effective_util"), v("nominal_util")
    missing = [BY_NAME[n].label for n, x in (("delay_index", di), ("effective_util", eff))
               if x is None]
    if missing:
        return ("Whether the pilot was scheduling-limited or compute-limited cannot be judged: "
                + " and ".join(missing) + " not measured.")
    assert di is not None and eff is not None
    sat, di_th = th["compute_saturation_util"], th["di"]
    hcl_clause = ""
    if hcl is not None and hcl > th["hcl_pp"] and nom is not None:
        hcl_clause = (f", and nominal utilization ({fmt.value(nom, 'share')}) overstated "
                      f"productive use by {fmt.value(hcl, 'pp')}")
    if eff >= sat:
        return (f"In the baseline phase the pilot was compute-limited: effective utilization "
                f"was {fmt.value(eff, 'share')} (≥ {fmt.value(sat, 'share')}), so waiting "
                f"(DI {di:.2f}) reflects GPUs that were productively busy.")
    if di > di_th:
        return (f"In the baseline phase the pilot was scheduling-limited: {fmt.value(di, 'share')}"
                f" of latency was queue waiting (DI {di:.2f} > {di_th:.2f}) while effective "
                f"utilization was only {fmt.value(eff, 'share')} (< {fmt.value(sat, 'share')})"
                f"{hcl_clause}.")
    return (f"In the baseline phase no dominant limit shows: queue waiting was moderate "
            f"(DI {di:.2f} ≤ {di_th:.2f}) and effective utilization "
            f"{fmt.value(eff, 'share')} stayed below saturation ({fmt.value(sat, 'share')})"
            f"{hcl_clause}.")


def _before_after(w: _Warehouse) -> tuple[dict[tuple[str, str], dict], dict[str, dict]]:
    ba = w.q("metrics_before_after", """SELECT segment, metric, baseline, validation,
                abs_change, rel_change, unit FROM metrics_before_after WHERE pilot = ?""")
    did = w.q("metrics_did", """SELECT metric, treatment_change, control_change, did
                FROM metrics_did WHERE pilot = ?""")
    return ({(r["segment"], r["metric"]): r for r in ba.iter_rows(named=True)},
            {r["metric"]: r for r in did.iter_rows(named=True)})


def _has_control(ba: dict[tuple[str, str], dict]) -> bool:
    return any(seg == "control" and r["baseline"] is not None for (seg, _), r in ba.items())


def _summary_change(r: dict | None, m: Metric) -> str:
    # shares move in pp (a relative % of a share reads ambiguously); other units relatively
    if r is None:
        return "—"
    unit = r["unit"] or m.unit
    return fmt.change(r["abs_change"], unit) if unit in ("share", "pp") else fmt.rel(
        r["rel_change"])


def _why_not(hx: dict, m: Metric, cov: Coverage) -> str:
    """The pipeline's reason a metric has no value (its note), else the coverage's."""
    notes = sorted({r["note"] for k, r in hx.items() if k[4] == m.name and k[2] == "overall"
                    and r["value"] is None and r.get("note")})
    if notes:
        return "; ".join(notes)
    return cov.for_metric(m.name)


def _has_values(rows: Sequence[dict | None]) -> bool:
    return any(r is not None and (r.get("baseline") is not None
                                  or r.get("validation") is not None) for r in rows)


def _missing_note(hx: dict, ba: dict, cov: Coverage, shown: Sequence[str] = ()) -> str:
    """Headline metrics left out of a before/after table (no value in either phase), grouped
    by what would unlock them: 'Not measured — needs X: A, B; needs Y: C.'"""
    by_reason: dict[str, list[str]] = {}
    for m in HEADLINE:
        rows = [r for (_, name), r in ba.items() if name == m.name]
        partial = rows and any(r["baseline"] is None or r["validation"] is None for r in rows)
        if m.name in shown and not partial:
            continue
        if m.name not in shown or partial:
            why = _why_not(hx, m, cov).removeprefix(fmt.NOT_MEASURED).lstrip(": —")
            by_reason.setdefault(why or "no reason recorded", []).append(m.label)
    if not by_reason:
        return ""
    return " Not measured — " + "; ".join(f"{why}: {', '.join(labels)}"
                                         for why, labels in by_reason.items()) + "."


def _verdict(r: dict | None, control: bool) -> str:
    if r is None:
        return "no interval"
    sig = r.get("did_significant") if control else r.get("significant")
    return fmt.verdict(sig)


MIN_HEADLINE_ROWS = 3  # below this, the further metrics the telemetry allowed are shown too


def _with_values(ba: dict, segs: Sequence[str]) -> list[Metric]:
    """Headline metrics with a value in some phase of these segments: a row of 'not measured'
    cells says less than one line naming what they need (the table's note). When partial
    telemetry leaves fewer than three, the other metrics with values follow (request rate of
    a trace, GPU energy and memory of a GPU-only pilot, series aggregates)."""
    shown = [m for m in HEADLINE if _has_values([ba.get((s_, m.name)) for s_ in segs])]
    if len(shown) >= MIN_HEADLINE_ROWS:
        return shown
    order = {m.name: i for i, m in enumerate(CATALOG)}
    names = {n for (s_, n) in ba if s_ in segs and n not in {m.name for m in HEADLINE}}
    return shown + [metric_of(n, ba.get((segs[0], n))) for n in sorted(
        names, key=lambda n: (order.get(n, len(order)), n))
        if _has_values([ba.get((s_, n)) for s_ in segs])]


def _overall_row(hx: dict, name: str) -> dict[str, Any] | None:
    return hx.get(("baseline", "all", "overall", None, name))


def _headline_table(ba: dict, did: dict, hx: dict, ci: dict, cov: Coverage) -> Table:
    """Section 0: per metric, treatment (and control) change with 95 % interval, and the DiD."""
    control = _has_control(ba)
    seg = "treatment" if control else "all"
    rows = []
    shown = _with_values(ba, (seg, "control") if control else (seg,))
    for m in shown:
        r = ba.get((seg, m.name))
        unit = (r or {}).get("unit") or m.unit
        c = ci.get((seg, m.name))
        before_after = (f"{fmt.value((r or {}).get('baseline'), unit)} → "
                        f"{fmt.value((r or {}).get('validation'), unit)}")
        change = sections.change_text(c, m) if c else _summary_change(r, m)
        row = [_label(m, _overall_row(hx, m.name)), before_after, change]
        if control:
            cc = ci.get(("control", m.name))
            row.append(sections.change_text(cc, m) if cc else _summary_change(
                ba.get(("control", m.name)), m))
            row.append(sections.did_text(c, m) if c else fmt.change(
                (did.get(m.name) or {}).get("did"), m.unit))
        row.append(_verdict(c, control) if ci else "no interval")
        rows.append(row)
    cols = ["Metric", "Treatment: baseline → validation" if control else
            "Baseline → validation", "Treatment change [95 % CI]" if control else
            "Change [95 % CI]"]
    if control:
        cols += ["Control change [95 % CI]", "DiD [95 % CI]"]
    cols.append("Result (DiD)" if control else "Result")
    note = ("Change: relative for latencies, rates and energy; in percentage points for "
            "shares. DiD = treatment change − control change, in the metric's unit. "
            "Intervals: 95 % block bootstrap (appendix B); a change whose interval spans zero "
            "is reported as “no significant change”.")
    if not ci:
        note += " No confidence intervals in the warehouse for this pilot (metrics_ci)."
    if not control:
        note += " No control segment, so no difference-in-differences."
    note += _missing_note(hx, ba, cov, [m.name for m in shown])
    return Table("Headline metrics before and after", cols, rows,
                 basis=_bases([_overall_row(hx, m.name) for m in shown]),
                 num_cols=tuple(range(1, len(cols) - 1)), note=note,
                 nowrap_cols=(len(cols) - 1,),
                 empty="No headline metric has a value for this pilot."
                       + _missing_note(hx, ba, cov))


def _results(ba: dict, did: dict, hx: dict, ci: dict,
             predicted: dict[str, dict], policy: str, cov: Coverage) -> Results:
    if not ba:
        return Results(False, [], None, [])
    names = {"all": "All traffic", "treatment": "Treatment segment",
             "control": "Control segment"}
    control = _has_control(ba)
    tables = []
    for seg in ("all", "treatment", "control"):
        rows = []
        shown = _with_values(ba, (seg,))
        for m in shown:
            r = ba[(seg, m.name)]
            unit = r["unit"] or m.unit
            c = ci.get((seg, m.name)) or {}
            rows.append([
                _label(m, _overall_row(hx, m.name)),
                fmt.two_lines(fmt.value(r["baseline"], unit),
                              fmt.interval(c.get("baseline_lo"), c.get("baseline_hi"), unit)),
                fmt.two_lines(fmt.value(r["validation"], unit),
                              fmt.interval(c.get("validation_lo"), c.get("validation_hi"),
                                           unit)),
                fmt.two_lines(fmt.change(r["abs_change"], unit),
                              fmt.change_interval(c.get("change_lo"), c.get("change_hi"),
                                                  unit)),
                fmt.two_lines(fmt.rel(r["rel_change"]),
                              fmt.rel_interval(c.get("rel_change_lo"), c.get("rel_change_hi"))),
                fmt.verdict(c.get("significant")) if c else "no interval"])
        if any(k[0] == seg for k in ba):
            tables.append(Table(f"{names[seg]}: baseline vs validation",
                                ["Metric", "Baseline", "Validation", "Change", "Relative",
                                 "Result"],
                                rows, basis=_bases([_overall_row(hx, m.name) for m in shown]),
                                num_cols=(1, 2, 3, 4), anchor=f"res-{seg}", nowrap_cols=(5,),
                                note=_missing_note(hx, {k: r for k, r in ba.items()
                                                        if k[0] == seg}, cov,
                                                   [m.name for m in shown]).strip(),
                                empty="No headline metric has a value in this segment."
                                      + _missing_note(hx, {k: r for k, r in ba.items()
                                                           if k[0] == seg}, cov)))
    did_table = None
    if control:
        rows = []
        for m in _with_values(ba, ("treatment", "control")):
            d = did.get(m.name)
            if d is None:
                continue
            c = ci.get(("treatment", m.name))
            row = [m.label, fmt.change(d["treatment_change"], m.unit),
                   fmt.change(d["control_change"], m.unit),
                   sections.did_text(c, m) if c else fmt.change(d["did"], m.unit),
                   _verdict(c, True) if c else "no interval"]
            if predicted:
                p = predicted.get(m.name)
                row.append(fmt.change(p.get("predicted_change"), m.unit) if p else "—")
            rows.append(row)
        cols = ["Metric", "Treatment change", "Control change", "DiD [95 % CI]", "Result"]
        if predicted:
            cols.append("Predicted change (modeled)")
        did_table = Table("Difference-in-differences with 95 % intervals", cols, rows,
                          basis="measured, modeled" if predicted else "measured",
                          num_cols=(1, 2, 3) + ((5,) if predicted else ()),
                          empty="No rows in metrics_did.", anchor="res-did",
                          nowrap_cols=(4,))
    seg = "treatment" if control else "all"
    moved = sorted((r for (s_, _), r in ba.items() if s_ == seg and r["rel_change"] is not None
                    and r["metric"] in BY_NAME and BY_NAME[r["metric"]].headline),
                   key=lambda r: -abs(r["rel_change"]))[:3]
    sentences = []
    for r in moved:
        m = BY_NAME[r["metric"]]
        c = ci.get((seg, m.name))
        where = "treatment segment" if control else "pilot"
        if c and c.get("significant") is not None:
            s_ = f"In the {where}, {m.label} {sections.change_words(c, m, 'change')}"
            if control:
                s_ += (f"; difference-in-differences {fmt.change(c.get('did'), m.unit)} "
                       f"{fmt.change_interval(c.get('did_lo'), c.get('did_hi'), m.unit)}, "
                       f"{_verdict(c, True)} relative to the control")
        else:
            unit = r["unit"] or m.unit
            s_ = (f"{m.label} {fmt.moved(r['rel_change'], r['abs_change'], unit)} in the "
                  f"{where} ({fmt.value(r['baseline'], unit)} → "
                  f"{fmt.value(r['validation'], unit)}; no interval)")
        sentences.append(s_ + ".")
    intro = ("Each value comes with its 95 % block-bootstrap interval (second line); the "
             "result column says whether the change's interval excludes zero."
             if ci else "No confidence intervals in the warehouse for this pilot: changes are "
                        "described, not judged significant.")
    pnote = (f"Predicted changes are the what-if simulator's (modeled) figures for policy "
             f"“{policy.replace('_', ' ')}”, which matches the adjustments applied."
             if predicted else "Predicted (modeled) changes: no what-if policy in the warehouse "
                               "matches the adjustments applied, so none is shown beside the "
                               "measured ones.")
    return Results(True, tables, did_table, sentences, intro, pnote)


def _validation_run(w: _Warehouse, config: dict[str, Any], hx: dict) -> ValidationRun:
    ph = w.q("phases", "SELECT phase, start_ts, end_ts FROM phases WHERE pilot = ? "
                       "ORDER BY start_ts")
    phases = Table("Phases", ["Phase", "Start", "End", "Duration"],
                   [[r["phase"], fmt.ts(r["start_ts"]), fmt.ts(r["end_ts"]),
                     fmt.duration(r["end_ts"] - r["start_ts"])] for r in ph.iter_rows(named=True)],
                   basis=None, empty="No phases for this pilot.")
    sc = w.q("pilot_scope", "SELECT kind, pools, priorities, share FROM pilot_scope "
                            "WHERE pilot = ?")
    if sc.is_empty():
        scope = "No scope rule recorded for this pilot."
    else:
        r = sc.row(0, named=True)
        scope = {"all": "all traffic (no control segment)",
                 "pools": f"requests in pools {', '.join(r['pools'] or [])}",
                 "priorities": f"requests of priority classes {', '.join(r['priorities'] or [])}",
                 "share": f"a hashed {fmt.value(r['share'], 'share')} share of logical requests",
                 }.get(r["kind"], f"rule of kind {r['kind']}")
    rows = []
    for p in ph["phase"].to_list() if not ph.is_empty() else []:
        lr = {s: (hx.get((p, s, "overall", None, "logical_requests")) or {}).get("value")
              for s in ("all", "treatment", "control")}
        if lr["all"]:
            rows.append([p, fmt.count(lr["treatment"]), fmt.count(lr["control"]),
                         fmt.count(lr["all"]),
                         fmt.share(lr["treatment"] or 0, lr["all"])])
    share_table = Table("Treatment share of traffic (logical requests per segment)",
                        ["Phase", "Treatment", "Control", "All", "Treatment share"], rows,
                        num_cols=(1, 2, 3, 4),
                        empty="Not measured: no logical_requests rows in metrics_headline.")
    adjustments = [str(a).replace("_", " ") for a in config.get("adjustments") or []]
    return ValidationRun(phases, scope, share_table, adjustments)


def _metric_defs() -> Table:
    return Table("Metric definitions (pipelines/metric_catalog.py)",
                 ["Metric", "Name", "Unit", "Better", "Definition"],
                 [[m.label, m.name, m.unit, m.better, m.definition] for m in CATALOG],
                 basis=None)


SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("0", "Executive summary", "s0"),
    ("1", "Investigation environment", "s1"),
    ("2", "Baseline operating state", "s2"),
    ("3", "Identified operational patterns", "s3"),
    ("4", "Operational topology and wave analysis", "s4"),
    ("5", "Hidden operational losses", "s5"),
    ("6", "Model-based operational adjustments", "s6"),
    ("7", "Validation execution", "s7"),
    ("8", "Validated results", "s8"),
    ("9", "Interpretation", "s9"),
    ("10", "Conclusion", "s10"),
    ("11", "Next steps", "s11"),
    ("A", "Metric definitions and thresholds", "sA"),
    ("B", "Methodology", "sB"),
    ("C", "Observer-only and data security model", "sC"),
    ("D", "Anonymization statement", "sD"),
    ("Q", "Data quality", "sQ"),
    ("V", "Visual appendices", "sV"),
    ("P", "Provenance", "sP"),
)


def _bootstrap_note(ci: dict) -> str:
    if not ci:
        return ("Confidence intervals: not computed for this pilot (no metrics_ci rows); "
                "changes are described, never called significant, and DiD values are point "
                "estimates.")
    r = next(iter(ci.values()))
    return (f"Confidence intervals (pipelines/statistics.py, table metrics_ci): block "
            f"bootstrap over time. Each phase is cut into {r['block_s']:g}-second blocks "
            f"({r['blocks_baseline']} in the baseline, {r['blocks_validation']} in the "
            f"validation); blocks are drawn with replacement {r['resamples']} times (seed "
            f"{r['seed']}), so autocorrelation inside a block (a burst and its queue) is kept. "
            f"Each resample recombines per-block sums (counts, latency sums, GPU-time sums) and, "
            f"for quantiles, per-block log-spaced latency histograms (200 bins): quantile "
            f"intervals are histogram-approximate while the printed point values stay exact. "
            f"Intervals are {100 * r['level']:.0f} % percentile intervals, translated to the "
            f"exact point value. Treatment and control draw the same blocks (paired), baseline "
            f"and validation independently; the difference-in-differences "
            f"(Vt − Bt) − (Vc − Bc) is computed per resample. A change or DiD whose interval "
            f"spans zero is reported as “no significant change”.")


def _methodology(th: dict[str, float], charts_notes: list[str], ci: dict,
                 analytics: bool, corr: bool) -> list[str]:
    return [
        "Measured figures are read from the pipeline's tables (metrics_headline, "
        "metrics_before_after, metrics_did, metrics_ci, pool_windows, burst_episodes, "
        "hidden_idle_map, the analytics tables and the staging tables); modeled figures come "
        "only from the what-if tables and are labelled so. The report computes no metric "
        "itself; a metric the pipeline could not compute prints as “not measured” with the "
        "pipeline's reason.",
        "Windows: bursts in 10-second windows per pool (METRICS.md, Bursts); pool state maps, "
        "the SLA-risk map and the energy–latency view in 1-minute windows.",
        _bootstrap_note(ci),
        ("Findings (section 0) are the pattern detectors' findings (findings table), ranked by "
         "their severity, then by latency cost, then by count; each links to its evidence "
         "table in section 3." if analytics else
         "Findings (section 0) are threshold rules on the baseline phase's headline metrics "
         "for all traffic (the pattern detectors' tables are not in this run). Each rule "
         "compares one measured value with a threshold from appendix A; its severity is the "
         "exceedance factor (DI ÷ DI threshold; HCL ÷ HCL threshold; burst-to-overall "
         "queue-wait ratio ÷ its threshold; extra attempts per request ÷ allowed extra; "
         "timeout rate ÷ its threshold; SLA shortfall ÷ allowed shortfall). A rule fires above "
         "1; at most three are shown."),
        f"Conclusion rule (baseline phase, all traffic): compute-limited when effective "
        f"utilization ≥ {fmt.value(th['compute_saturation_util'], 'share')}; otherwise "
        f"scheduling-limited when DI > {th['di']:g}; otherwise no dominant limit. HCL above "
        f"{th['hcl_pp']:g} pp is named in the sentence as supporting evidence. If DI or "
        f"effective utilization is not measured, the sentence says it cannot be judged. "
        f"Section 10 counts the headline metrics whose DiD (or, without a control, change) "
        f"interval excludes zero, in the metric's better direction or not.",
        "Difference-in-differences: (Vtreat − Btreat) − (Vctrl − Bctrl) per metric, in the "
        "metric's own unit; the treatment segment is defined by the pilot's scope rule "
        "(section 7).",
        ("Energy–latency correlation: Spearman ρ of per-minute cluster power and per-minute "
         "P95 latency (energy_latency_corr), with a 95 % moving-block bootstrap interval "
         "(10-minute blocks)." if corr else
         "Energy–latency correlation: not computed in this run."),
        "Simulator (what-if, section 6): a discrete-event replay of a phase's arrivals with "
        "service times drawn from the observed ones, under each policy; its figures are "
        "modeled and shown beside measured ones only with that label.",
        "Treatment share of traffic is the treatment segment's logical requests divided by "
        "all logical requests per phase, both from metrics_headline.",
        *charts_notes,
    ]


def build_report_model(con: duckdb.DuckDBPyConnection, pilot: str, *, run_id: str,
                       pipeline_version: str, generated_at: datetime) -> ReportModel:
    """Read one pilot's warehouse tables and return everything the report prints."""
    w = _Warehouse(con, pilot)
    meta = w.q("pilots", "SELECT title, timezone, config_json FROM pilots WHERE pilot = ?")
    if meta.is_empty():
        raise ValueError(f"pilot {pilot!r} is not in the warehouse (table pilots)")
    m0 = meta.row(0, named=True)
    config = json.loads(m0["config_json"] or "{}")
    title = m0["title"] or pilot
    th, th_table = _thresholds(w)
    cov = Coverage.read(w)
    hx = _headline_index(w.q("metrics_headline", """SELECT phase, segment, breakdown,
            breakdown_value, metric, value, unit, basis, note FROM metrics_headline
            WHERE pilot = ?"""))
    ba, did = _before_after(w)

    ph = w.q("phases", "SELECT min(start_ts) AS lo, max(end_ts) AS hi, string_agg(phase, ', ' "
                       "ORDER BY start_ts) AS names FROM phases WHERE pilot = ?")
    period = "No phases recorded."
    if not ph.is_empty() and ph["lo"][0] is not None:
        period = (f"{fmt.ts(ph['lo'][0])} to {fmt.ts(ph['hi'][0])} "
                  f"({fmt.duration(ph['hi'][0] - ph['lo'][0])}; phases: {ph['names'][0]})")
    validation = _validation_run(w, config, hx)
    adj = ", ".join(validation.adjustments) or "no listed adjustments"
    objective = (f"Measure request latency, queueing and GPU utilization of “{title}” in the "
                 f"baseline phase, and compare them with the validation phase, in which {adj} "
                 f"were applied to {validation.scope}.")
    ci = sections.ci_index(w)
    control = _has_control(ba)
    pattern_parts, summaries = sections.patterns(w)
    rule_findings, skipped, n_rules = _findings(hx, th)
    if summaries:  # the detectors ran: their findings, linked to the evidence in section 3
        findings = sections.top_findings(summaries)
        note = (f"{len(summaries)} patterns were found; the {min(3, len(summaries))} largest "
                f"by severity and latency cost are shown, each linked to its evidence.")
        skipped = []
    else:
        findings = rule_findings
        n_eval = n_rules - len(skipped)
        untested = sections.untested_patterns(w)
        if len(findings) >= 3:
            note = f"{len(findings)} of {n_rules} rules fired; the three most severe are shown."
        elif findings:
            note = (f"Only {len(findings)} of {n_rules} rules fired, so fewer than three are "
                    f"shown.")
        elif n_eval == 0:
            note = (f"No finding could be tested: none of the {n_rules} finding rules had "
                    f"its metrics, and "
                    + (f"{untested[0]} of {untested[1]} pattern detectors lacked their inputs "
                       "(section 3)." if untested else "no pattern detector ran.")
                    + " This is not evidence that the patterns are absent.")
            skipped = []  # every rule lacked its metrics: section 0.2 names what they need
        else:
            note = (f"None of the {n_eval} finding rules that could be evaluated fired on the "
                    f"baseline metrics (measured); {len(skipped)} could not be evaluated.")
    conclusion = _conclusion(hx, th)
    executive = Executive(objective, period, _headline_table(ba, did, hx, ci, cov), findings[:3],
                          note, skipped, conclusion)

    phases_df = w.q("phases", "SELECT phase, start_ts, end_ts FROM phases WHERE pilot = ? "
                              "ORDER BY start_ts")
    chart_list, chart_notes = charts.build_charts(w, hx, phases=phases_df, cov=cov)
    more, sync_missing = visuals.build_more_charts(w, ci, control, cov)
    chart_list += more
    chart_notes += [f"Visual appendix {c.number}: {c.note}" for c in more if c.note]
    predicted, policy = sections.predicted_for(w, config.get("adjustments") or [])
    obs, anon = sections.observer_only(w, config)
    bodies = {
        "s3": pattern_parts,
        "s4": sections.topology(w, th["sla_adherence_target"], cov),
        "s5": sections.losses(w, hx, ci, summaries, cov),
        "s6": sections.whatif(w),
        "s9": sections.interpretation(summaries, ci, control, cov),
        "s10": sections.conclusion(conclusion, ci, control),
        "s11": sections.next_steps(summaries, ci, control, sync_missing, cov),
        "sC": obs,
        "sD": anon,
        "sQ": sections.data_quality(w),
    }

    files = w.q("ingest_log", "SELECT file, source_kind, sha256, bytes FROM ingest_log "
                              "WHERE pilot = ? ORDER BY source_index, file")
    provenance = Provenance(
        pilot, title,
        Table("Input files", ["File", "Kind", "Bytes", "sha256"],
              [[r["file"], r["source_kind"], fmt.count(r["bytes"]), r["sha256"]]
               for r in files.iter_rows(named=True)], basis=None, num_cols=(2,),
              wrap_cols=(0, 3),
              empty="No input files recorded in ingest_log."),
        pipeline_version, run_id, generated_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
        [])
    model = ReportModel(
        pilot=pilot, pilot_title=title, report_title=REPORT_TITLE,
        running_header=f"{pilot} — {REPORT_TITLE}",
        sections=[Section(n, t, a) for n, t, a in SECTIONS],
        executive=executive, environment=_environment(w, cov), baseline=_baseline(hx, cov),
        validation=validation, results=_results(ba, did, hx, ci, predicted, policy, cov),
        charts=chart_list, metric_defs=_metric_defs(), thresholds=th_table,
        methodology=_methodology(th, chart_notes, ci, bool(summaries),
                                 w.has("energy_latency_corr")),
        provenance=provenance, bodies=bodies,
        has_modeled=w.has("whatif_results") and bool(predicted or bodies["s6"][0].tables))
    model.provenance.tables_read = list(w.read)  # filled last: every read has happened
    return model
