"""The report's data model: everything the template shows, read from the warehouse and formatted.

The template only displays; every number, sentence and choice is made here, from the tables the
pipeline built. This module only reads (plain SELECTs) and never computes a metric: where a
number is not in the tables it is printed as missing, never derived on the side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from pipelines.ingest.prometheus_api import PRESETS, PROVENANCE_PREFIX
from pipelines.metric_catalog import CATALOG
from reports import charts, fmt, sections, visuals
from reports.baseline import Baseline
from reports.baseline import baseline as read_baseline
from reports.cells import headline_index
from reports.charts import Chart
from reports.conclusion import Conclusion, conclude, pattern_shares
from reports.coverage import Coverage
from reports.environment import Environment, environment
from reports.findings_rules import rule_findings
from reports.headline import Results, before_after, has_control, headline_table, results
from reports.power import power_table
from reports.thresholds import read_thresholds
from reports.types import Finding, Part, Section, Table
from reports.verdict import Verdict, build_verdict

REPORT_TITLE = "Operational synchronization report"


@dataclass
class Executive:
    objective: str
    period: str
    headline: Table
    findings: list[Finding]
    findings_note: str
    not_evaluated: list[str]
    conclusion: Conclusion
    verdict: Verdict


@dataclass
class ValidationRun:
    phases: Table
    scope: str
    treatment_share: Table
    adjustments: list[str]


@dataclass
class Provenance:
    pilot: str
    title: str
    files: Table
    pipeline_version: str
    run_id: str
    generated_at: str
    tables_read: list[str]
    pulls: Table | None = None  # live sources (prometheus-api): server, pull time, queries


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
    index_defs: Table | None = None  # appendix A: indices and abbreviations
    figures: dict[str, list[Chart]] = field(default_factory=dict)  # section anchor -> visuals
    detector_scores: Table | None = None  # appendix B: simulated pilots only
    power: Table | None = None  # section 8: validation length needed to detect a change
    detector_scores_text: str = ""


# Where each visual is discussed: the template draws it at the end of that section's text.
FIGURE_SECTION = {1: "s2", 2: "s4", 3: "s4", 4: "s4", 5: "s5", 6: "s5", 7: "s8", 8: "s4"}


def place_figures(chart_list: list[Chart]) -> dict[str, list[Chart]]:
    out: dict[str, list[Chart]] = {}
    for c in chart_list:
        out.setdefault(FIGURE_SECTION.get(c.number, "sV"), []).append(c)
    return out


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


# Indices and abbreviations the report uses (docs/METRICS.md, section 4), defined once here.
INDEX_DEFS: tuple[tuple[str, str, str, str], ...] = (
    ("Delay Index (DI)", "DI", "share of latency",
     "Share of completed attempts' end-to-end latency spent waiting in queue (delay_index of "
     "metrics_headline); shown in % with its scope (all traffic, treatment or control)."),
    ("Hidden capacity loss (HCL)", "HCL", "pp",
     "Nominal minus effective GPU utilization, in percentage points (hcl_pp)."),
    ("Wave Propagation Index (WPI)", "WPI", "ratio",
     "All traffic only. Per phase: the mean, over the phase's burst episodes, of the share of "
     "other pools whose latency exceeded its threshold in the same window (int_wave_events). "
     "Not measured when the phase has no burst episode or a single pool."),
    ("Coherence Index (CoI)", "CI (indices table key)", "%",
     "100 × the share of coherent pool-minutes among those with at least one first attempt: "
     "SLA adherence at or above target, queue-wait P95 at most half the SLA target, and no "
     "idle/overload flip. Written CoI in this report so it never reads as a confidence "
     "interval."),
    ("95 % CI", "—", "same as the metric",
     "Confidence interval: the 95 % block-bootstrap percentile interval of a value, a change "
     "or a difference-in-differences (appendix B)."),
    ("DiD", "—", "metric's unit",
     "Difference-in-differences: (treatment validation − treatment baseline) − (control "
     "validation − control baseline)."),
)


def _index_defs() -> Table:
    return Table("Indices and abbreviations", ["Name", "Key", "Unit", "Definition"],
                 [list(r) for r in INDEX_DEFS], basis=None)


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
        f"Conclusion rule (section 0.4; baseline phase, all traffic): GPU-limited when "
        f"effective utilization ≥ {fmt.value(th['compute_saturation_util'], 'share')}; "
        f"otherwise queue-dominated when queue-wait P95 is at least "
        f"{fmt.value(th['tail_queue_share'], 'share')} of P95 latency or the Delay Index "
        f"exceeds {fmt.value(th['di'], 'share')}; otherwise no dominant limit. The sentence "
        f"quotes each number it used, HCL above {th['hcl_pp']:g} pp, and the patterns' shares "
        f"of the total queue wait when the findings table has them. Verdict (section 0): a "
        f"headline metric improved or worsened only where the interval the report prints "
        f"excludes zero at its printed precision (bounds are printed with more decimals until "
        f"a non-zero bound no longer reads as zero); with a control segment the verdict uses "
        f"the difference-in-differences interval. Section 10 counts the headline metrics the "
        f"same way.",
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
    """Read one pilot's warehouse tables and return everything the report prints.

    The charts are drawn (vl-convert, seconds) in child processes while the queries go on;
    the model returned holds every chart's finished SVG."""
    with charts.charts_in_background() as resolve:
        model = _build_report_model(con, pilot, run_id=run_id,
                                    pipeline_version=pipeline_version,
                                    generated_at=generated_at)
        for c in model.charts:  # model.figures holds the same Chart objects
            c.svg = resolve(c.svg)
        verdict = model.executive.verdict
        verdict.chart_svg = resolve(verdict.chart_svg)
    return model


def _build_report_model(con: duckdb.DuckDBPyConnection, pilot: str, *, run_id: str,
                        pipeline_version: str, generated_at: datetime) -> ReportModel:
    w = _Warehouse(con, pilot)
    meta = w.q("pilots", "SELECT title, timezone, config_json FROM pilots WHERE pilot = ?")
    if meta.is_empty():
        raise ValueError(f"pilot {pilot!r} is not in the warehouse (table pilots)")
    m0 = meta.row(0, named=True)
    config = json.loads(m0["config_json"] or "{}")
    title = m0["title"] or pilot
    th, th_table = read_thresholds(w)
    cov = Coverage.read(w)
    hx = headline_index(w.q("metrics_headline", """SELECT phase, segment, breakdown,
            breakdown_value, metric, value, unit, basis, note FROM metrics_headline
            WHERE pilot = ?"""))
    ba, did = before_after(w)

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
    control = has_control(ba)
    pattern_parts, summaries = sections.patterns(w)
    by_rule, skipped, n_rules = rule_findings(hx, th)
    if summaries:  # the detectors ran: their findings, linked to the evidence in section 3
        findings = sections.top_findings(summaries)
        note = (f"{len(summaries)} patterns were found; the {min(3, len(summaries))} largest "
                f"by severity and latency cost are shown, each linked to its evidence.")
        skipped = []
    else:
        findings = by_rule
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
    conclusion = conclude(hx, th, pattern_shares(w))
    lengths = w.q("phases", "SELECT phase, epoch(end_ts) - epoch(start_ts) AS d FROM phases "
                              "WHERE pilot = ?")
    verdict = build_verdict(ci, control, validation.scope, {
        r["phase"]: timedelta(seconds=r["d"]) for r in lengths.iter_rows(named=True)}, hx, cov)
    executive = Executive(objective, period, headline_table(ba, did, hx, ci, cov), findings[:3],
                          note, skipped, conclusion, verdict)

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
        "s9": sections.interpretation(summaries, ci, control, cov, conclusion.kind),
        "s10": sections.conclusion(conclusion.sentence, ci, control),
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
        [], pulls=_pulls_table(w))
    model = ReportModel(
        pilot=pilot, pilot_title=title, report_title=REPORT_TITLE,
        running_header=f"{pilot} — {REPORT_TITLE}",
        sections=[Section(n, t, a) for n, t, a in SECTIONS],
        executive=executive, environment=environment(w, cov), baseline=read_baseline(hx, cov),
        validation=validation, results=results(ba, did, hx, ci, predicted, policy, cov),
        charts=chart_list, metric_defs=_metric_defs(), thresholds=th_table,
        index_defs=_index_defs(),
        detector_scores=sections.detector_scores_table(w),
        power=power_table(ci) if ci else None,
        detector_scores_text=sections.DETECTOR_SCORES_TEXT,
        methodology=_methodology(th, chart_notes, ci, bool(summaries),
                                 w.has("energy_latency_corr")),
        provenance=provenance, bodies=bodies,
        has_modeled=w.has("whatif_results") and bool(predicted or bodies["s6"][0].tables),
        figures=place_figures(chart_list))
    model.provenance.tables_read = list(w.read)  # filled last: every read has happened
    return model


def _pulls_table(w: _Warehouse) -> Table | None:
    """Provenance of live sources: the pull note ingest_log keeps per prometheus-api source
    (server, pull time, step, range, responses) and the queries asked, from the pilot's
    config. None when the pilot has no live source."""
    if not w.has("ingest_log") or "warnings" not in w.cols("ingest_log"):
        return None
    notes = w.q("ingest_log", "SELECT source_index, unnest(warnings) AS note FROM ingest_log "
                              "WHERE pilot = ? AND source_kind = 'prometheus-api' "
                              "ORDER BY source_index")
    notes = notes.filter(pl.col("note").str.starts_with(PROVENANCE_PREFIX))
    if notes.is_empty():
        return None
    cfg = w.q("pilots", "SELECT config_json FROM pilots WHERE pilot = ?")
    sources = (json.loads(cfg["config_json"][0]).get("sources", [])
               if not cfg.is_empty() and cfg["config_json"][0] else [])
    rows = []
    for r in notes.iter_rows(named=True):
        i = r["source_index"]
        opts = (sources[i].get("options") or {}) if 0 <= i < len(sources) else {}
        queries = [q if isinstance(q, str) else str(q.get("query", ""))
                   for q in opts.get("queries") or []]
        if opts.get("preset"):
            queries = list(PRESETS.get(opts["preset"], ())) + queries
        rows.append([str(i), r["note"][len(PROVENANCE_PREFIX):], "; ".join(queries)])
    return Table("Pulled from Prometheus (prometheus-api sources)", ["Source", "Pull", "Queries"],
                 rows, basis=None, wrap_cols=(1, 2))
