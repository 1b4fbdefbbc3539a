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
from reports import charts, fmt
from reports.charts import Chart

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
class Table:
    caption: str
    columns: list[str]
    rows: list[list[str]]
    basis: str | None = "measured"  # measured | modeled | None (inventory, not a figure)
    num_cols: tuple[int, ...] = ()  # right-aligned columns
    wrap_cols: tuple[int, ...] = ()  # long tokens (files, checksums) that may break anywhere
    empty: str = "No rows."
    note: str = ""


@dataclass
class Section:
    number: str
    title: str
    anchor: str
    included: bool = True
    absent: str = ""  # the one line printed when the section is not in this version


@dataclass
class Finding:
    title: str
    sentence: str
    metric: str  # the catalog label of the metric it cites
    severity: float

    @property
    def severity_text(self) -> str:
        return f"{self.severity:.2f}"


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


def _metric_text(row: dict[str, Any] | None, metric: Metric) -> str:
    if row is None:
        return fmt.NOT_MEASURED + " — no row in metrics_headline"
    if row["value"] is None:
        why = row.get("note") or "no reason given"
        return f"{fmt.NOT_MEASURED} — {why}"
    return fmt.value(row["value"], row.get("unit") or metric.unit)


def _label(metric: Metric, row: dict[str, Any] | None = None) -> str:
    # effective utilization names which source it used (sm_active vs productive-time)
    if metric.name == "effective_util" and row and row.get("value") is not None and row["note"]:
        return f"{metric.label} ({row['note']})"
    return metric.label


def _bases(rows: Sequence[dict[str, Any] | None]) -> str:
    found = sorted({r["basis"] for r in rows if r and r.get("basis")})
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


def _environment(w: _Warehouse) -> Environment:
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
            ("Request arrivals", "requests", "min(arrival_ts)", "max(arrival_ts)"),
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
    for t in ("requests", "jobs", "samples", "quarantine", "ingest_log", "phases",
              "sla_targets", "thresholds"):
        d = w.q(t, f"SELECT count(*) AS n FROM {t} WHERE pilot = ?")
        counts.append([t, "table not built" if d.is_empty() else fmt.count(d["n"][0])])
    table_rows = Table("Rows per staging table", ["Table", "Rows"], counts, basis=None,
                       num_cols=(1,))

    inv = w.q("requests", """
        WITH g AS (SELECT pool, node, gpu FROM requests WHERE pilot = ?
                   UNION SELECT pool, node, gpu FROM samples WHERE pilot = ?)
        SELECT (SELECT count(DISTINCT pool) FROM g) AS pools,
               (SELECT count(DISTINCT node) FROM g) AS nodes,
               (SELECT count(DISTINCT (node, gpu)) FROM g WHERE gpu IS NOT NULL) AS gpus,
               (SELECT string_agg(DISTINCT priority, ', ' ORDER BY priority)
                  FROM requests WHERE pilot = ?) AS prios,
               (SELECT string_agg(DISTINCT pool, ', ' ORDER BY pool) FROM g) AS pool_names
        """, w.pilot, w.pilot) if w.has("samples") else pl.DataFrame()
    inv_rows: list[list[str]] = []
    if not inv.is_empty():
        r = inv.row(0, named=True)
        inv_rows = [["Pools", fmt.count(r["pools"]), r["pool_names"] or "—"],
                    ["Nodes", fmt.count(r["nodes"]), "requests and samples"],
                    ["GPUs", fmt.count(r["gpus"]), "distinct (node, gpu) in requests and "
                     "samples"],
                    ["Priority classes", str(len((r["prios"] or "").split(", ")))
                     if r["prios"] else "0", r["prios"] or "—"]]
    inventory = Table("Inventory (distinct values in the staging tables)",
                      ["Entity", "Count", "Values / source"], inv_rows, basis=None,
                      num_cols=(1,), empty="No requests or samples for this pilot.")

    def mix(col: str, caption: str) -> Table:
        d = w.q("requests", f"""SELECT {col} AS k, count(*) AS attempts,
                    count(*) FILTER (WHERE attempt = 0) AS first
                    FROM requests WHERE pilot = ? GROUP BY ALL ORDER BY attempts DESC, k""")
        tot = float(d["attempts"].sum()) if not d.is_empty() else 0.0
        return Table(caption, [col.replace("_", " ").capitalize(), "Attempts",
                               "First attempts", "Share of attempts"],
                     [[r["k"], fmt.count(r["attempts"]), fmt.count(r["first"]),
                       fmt.share(r["attempts"], tot)] for r in d.iter_rows(named=True)],
                     basis=None, num_cols=(1, 2, 3), empty="No requests for this pilot.")

    return Environment(sources, quarantine, span_table, table_rows, inventory,
                       mix("model_class", "Workload mix by model class"),
                       mix("priority", "Workload mix by priority class"))


def _breakdown_table(hx: dict, caption: str, breakdown: str, values: list[str],
                     metrics: Sequence[Metric], phase: str) -> Table:
    rows = []
    cells = []
    for m in metrics:
        row = [m.label]
        for v in values:
            cell = hx.get((phase, "all", breakdown, v, m.name))
            cells.append(cell)
            row.append(_metric_text(cell, m) if cell else "—")
        rows.append(row)
    return Table(caption, ["Metric", *values], rows, basis=_bases(cells),
                 num_cols=tuple(range(1, len(values) + 1)))


def _baseline(hx: dict) -> Baseline:
    phase = "baseline"
    overall_rows, cells = [], []
    for m in HEADLINE:
        cell = hx.get((phase, "all", "overall", None, m.name))
        cells.append(cell)
        overall_rows.append([_label(m, cell), _metric_text(cell, m),
                             (cell or {}).get("basis") or "—"])
    overall = Table("Headline metrics, baseline phase, all traffic", ["Metric", "Value",
                                                                        "Basis"],
                    overall_rows, basis=_bases(cells), num_cols=(1,))
    pools = sorted({k[3] for k in hx if k[0] == phase and k[2] == "pool"})
    prios = sorted({k[3] for k in hx if k[0] == phase and k[2] == "priority"})
    by_pool = [
        _breakdown_table(hx, f"Baseline by pool ({i // POOLS_PER_TABLE + 1} of "
                         f"{-(-len(pools) // POOLS_PER_TABLE)})"
                         if len(pools) > POOLS_PER_TABLE else "Baseline by pool",
                         "pool", pools[i:i + POOLS_PER_TABLE], HEADLINE, phase)
        for i in range(0, len(pools), POOLS_PER_TABLE)]
    prio_metrics = [m for m in HEADLINE
                    if any(k[0] == phase and k[2] == "priority" and k[4] == m.name for k in hx)]
    by_priority = _breakdown_table(hx, "Baseline by priority class (GPU metrics are per GPU, "
                                   "not per class, and are omitted)", "priority", prios,
                                   prio_metrics, phase)
    if not prios:
        by_priority.rows = []
        by_priority.empty = "No per-class rows in metrics_headline for the baseline phase."
    p = {n: (hx.get((phase, "all", "overall", None, n)) or {}).get("value")
         for n in ("p50_latency_s", "p99_latency_s", "nominal_util", "effective_util")}
    parts = []
    if p["p50_latency_s"] and p["p99_latency_s"]:
        parts.append(f"P99 latency was {p['p99_latency_s'] / p['p50_latency_s']:.1f}× the "
                     f"median ({fmt.value(p['p99_latency_s'], 's')} vs "
                     f"{fmt.value(p['p50_latency_s'], 's')})")
    if p["nominal_util"] is not None and p["effective_util"] is not None:
        parts.append(f"nominal GPU utilization was {fmt.value(p['nominal_util'], 'share')} "
                     f"against {fmt.value(p['effective_util'], 'share')} effective")
    reading = ("In the baseline phase " + "; ".join(parts) + " (measured).") if parts else (
        "The latency spread and the utilization gap cannot be stated: the metrics are not "
        "measured.")
    return Baseline(bool(hx), overall, by_pool, by_priority, reading)


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


def _missing_note(hx: dict, ba: dict) -> str:
    """'Not measured: <metric> (<pipeline's reason>)' for before/after rows without values."""
    out = []
    for m in HEADLINE:
        rows = [r for (_, name), r in ba.items() if name == m.name]
        if rows and any(r["baseline"] is None or r["validation"] is None for r in rows):
            reasons = sorted({r["note"] for k, r in hx.items()
                              if k[4] == m.name and k[2] == "overall" and r["value"] is None
                              and r["note"]})
            out.append(f"{m.label} ({'; '.join(reasons) or 'no reason recorded'})")
    return f" Not measured: {', '.join(out)}." if out else ""


def _headline_table(ba: dict, did: dict, hx: dict) -> Table:
    control = _has_control(ba)
    segs = ("treatment", "control") if control else ("all",)
    rows = []
    for m in HEADLINE:
        row = [m.label]
        for s in segs:
            r = ba.get((s, m.name))
            unit = (r or {}).get("unit") or m.unit
            row += [fmt.value((r or {}).get("baseline"), unit),
                    fmt.value((r or {}).get("validation"), unit), _summary_change(r, m)]
        if control:
            d = did.get(m.name)
            row.append(fmt.change((d or {}).get("did"), m.unit))
        rows.append(row)
    names = {"treatment": "Treatment", "control": "Control", "all": "All traffic"}
    cols = ["Metric"]
    for s in segs:
        cols += [f"{names[s]} baseline", f"{names[s]} validation", f"{names[s]} change"]
    if control:
        cols.append("DiD")
    note = ("Change: relative for latencies, rates and energy; in percentage points for "
            "shares. DiD = treatment change − control change, in the metric's unit. No "
            "confidence intervals in this version.")
    if not control:
        note += " No control segment, so no difference-in-differences."
    note += _missing_note(hx, ba)
    return Table("Headline metrics before and after", cols, rows, basis="measured",
                 num_cols=tuple(range(1, len(cols))), note=note,
                 empty="No before/after rows in the warehouse for this pilot.")


def _results(ba: dict, did: dict, hx: dict) -> Results:
    if not ba:
        return Results(False, [], None, [])
    names = {"all": "All traffic", "treatment": "Treatment segment",
             "control": "Control segment"}
    tables = []
    for seg in ("all", "treatment", "control"):
        rows = []
        for m in HEADLINE:
            r = ba.get((seg, m.name))
            if r is None:
                continue
            unit = r["unit"] or m.unit
            rows.append([m.label, fmt.value(r["baseline"], unit),
                         fmt.value(r["validation"], unit), fmt.change(r["abs_change"], unit),
                         fmt.rel(r["rel_change"])])
        if rows:
            tables.append(Table(f"{names[seg]}: baseline vs validation",
                                ["Metric", "Baseline", "Validation", "Change", "Relative"],
                                rows, basis="measured", num_cols=(1, 2, 3, 4),
                                note=_missing_note(hx, {k: r for k, r in ba.items()
                                                        if k[0] == seg}).strip()))
    did_table = None
    if _has_control(ba):
        did_table = Table("Difference-in-differences (point estimates)",
                          ["Metric", "Treatment change", "Control change", "DiD"],
                          [[m.label, fmt.change(d["treatment_change"], m.unit),
                            fmt.change(d["control_change"], m.unit),
                            fmt.change(d["did"], m.unit)]
                           for m in HEADLINE if (d := did.get(m.name))],
                          basis="measured", num_cols=(1, 2, 3),
                          empty="No rows in metrics_did.")
    # Sentences for the three metrics that moved most (relative) in the treated traffic.
    seg = "treatment" if _has_control(ba) else "all"
    moved = sorted((r for (s, _), r in ba.items() if s == seg and r["rel_change"] is not None
                    and r["metric"] in BY_NAME and BY_NAME[r["metric"]].headline),
                   key=lambda r: -abs(r["rel_change"]))[:3]
    sentences = []
    for r in moved:
        m = BY_NAME[r["metric"]]
        unit = r["unit"] or m.unit
        s = (f"{m.label} {fmt.moved(r['rel_change'], r['abs_change'], unit)} in the "
             f"{'treatment segment' if seg == 'treatment' else 'pilot'} "
             f"({fmt.value(r['baseline'], unit)} → {fmt.value(r['validation'], unit)})")
        c = ba.get(("control", r["metric"]))
        if seg == "treatment" and c is not None:
            s += (f"; in the control segment it {fmt.moved(c['rel_change'], c['abs_change'], unit)}"
                  f" ({fmt.value(c['baseline'], unit)} → {fmt.value(c['validation'], unit)})")
        sentences.append(s + ".")
    return Results(True, tables, did_table, sentences)


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


SECTIONS: tuple[tuple[str, str, str, str], ...] = (
    # number, title, anchor, one line when not in this version ("" = included)
    ("0", "Executive summary", "s0", ""),
    ("1", "Investigation environment", "s1", ""),
    ("2", "Baseline operating state", "s2", ""),
    ("3", "Identified operational patterns", "s3",
     "Not in this version: the pattern detectors are not run yet, so no pattern is reported "
     "as found or as absent."),
    ("4", "Operational topology and wave analysis", "s4",
     "Not in this version beyond the burst episodes shown in visual appendix 2."),
    ("5", "Hidden operational losses", "s5",
     "Not in this version: the loss figures measured so far (HCL, retry amplification, DI, "
     "energy per good request) appear in sections 0, 2 and 8."),
    ("6", "Model-based operational adjustments", "s6",
     "Not in this version: no what-if (modeled) figures are produced yet."),
    ("7", "Validation execution", "s7", ""),
    ("8", "Validated results", "s8", ""),
    ("9", "Interpretation", "s9", "Not in this version."),
    ("10", "Conclusion", "s10", "Not in this version; the data-driven conclusion sentence is "
     "in section 0."),
    ("11", "Next steps", "s11", "Not in this version."),
    ("A", "Metric definitions and thresholds", "sA", ""),
    ("B", "Methodology", "sB", ""),
    ("C", "Observer-only and data security model", "sC", "Not in this version."),
    ("D", "Anonymization statement", "sD", "Not in this version."),
    ("V", "Visual appendices", "sV", ""),
    ("P", "Provenance", "sP", ""),
)


def _methodology(th: dict[str, float], charts_notes: list[str]) -> list[str]:
    return [
        "All figures in this version are measured: read from the pipeline's metric tables "
        "(metrics_headline, metrics_before_after, metrics_did, pool_windows, burst_episodes, "
        "hidden_idle_map) and staging tables. The report computes no metric itself; a metric "
        "the pipeline could not compute prints as “not measured” with the pipeline's reason.",
        "Confidence intervals are not computed in this version (the block bootstrap comes "
        "later). Changes are therefore described neutrally (“decreased by X %”) and no change "
        "is called significant. Difference-in-differences values are point estimates.",
        "Findings (section 0) are threshold rules on the baseline phase's headline metrics for "
        "all traffic. Each rule compares one measured value with a threshold from appendix A; "
        "its severity is the exceedance factor — how far the value is from ideal relative to "
        "the threshold's distance (DI ÷ DI threshold; HCL ÷ HCL threshold; burst-to-overall "
        "queue-wait ratio ÷ its threshold; extra attempts per request ÷ allowed extra; "
        "timeout rate ÷ its threshold; SLA shortfall (1 − adherence) ÷ allowed shortfall). A "
        "rule fires above 1; fired rules are ranked by severity and at most three are shown.",
        f"Conclusion rule (baseline phase, all traffic): compute-limited when effective "
        f"utilization ≥ {fmt.value(th['compute_saturation_util'], 'share')}; otherwise "
        f"scheduling-limited when DI > {th['di']:g}; otherwise no dominant limit. HCL above "
        f"{th['hcl_pp']:g} pp is named in the sentence as supporting evidence. If DI or "
        f"effective utilization is not measured, the sentence says it cannot be judged.",
        "Treatment share of traffic is the treatment segment's logical requests divided by "
        "all logical requests per phase, both from metrics_headline.",
        *charts_notes,
        "Not computed in this version: pattern detectors (section 3), topology beyond burst "
        "episodes (section 4), what-if simulation (section 6), confidence intervals, "
        "interpretation (sections 9–11), data-quality check results, and visual appendices "
        "3–8.",
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
    findings, skipped, n_rules = _findings(hx, th)
    if len(findings) >= 3:
        note = f"{len(findings)} of {n_rules} rules fired; the three most severe are shown."
    elif findings:
        note = f"Only {len(findings)} of {n_rules} rules fired, so fewer than three are shown."
    else:
        note = f"None of the {n_rules} finding rules fired on the baseline metrics."
    executive = Executive(objective, period, _headline_table(ba, did, hx), findings[:3], note,
                          skipped, _conclusion(hx, th))

    chart_list, chart_notes = charts.build_charts(w, hx, phases=w.q(
        "phases", "SELECT phase, start_ts, end_ts FROM phases WHERE pilot = ? ORDER BY start_ts"))

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
        sections=[Section(n, t, a, included=not absent, absent=absent)
                  for n, t, a, absent in SECTIONS],
        executive=executive, environment=_environment(w), baseline=_baseline(hx),
        validation=validation, results=_results(ba, did, hx), charts=chart_list,
        metric_defs=_metric_defs(), thresholds=th_table,
        methodology=_methodology(th, chart_notes), provenance=provenance)
    model.provenance.tables_read = list(w.read)  # filled last: every read has happened
    return model
