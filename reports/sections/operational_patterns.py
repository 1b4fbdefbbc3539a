"""Section 3: identified operational patterns (patterns_tested, findings, detector_scores)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from pipelines.metric_catalog import BY_NAME
from reports import fmt
from reports.sections.common import (
    PATTERNS,
    SEVERITY_RANK,
    Reader,
    not_in_run,
    pattern_anchor,
    pattern_label,
)
from reports.types import Finding, Part, Table

MAX_EVIDENCE_ROWS = 5  # per pattern: the most costly findings; the count says how many more



@dataclass
class PatternSummary:
    pattern: str
    label: str
    findings: int
    by_phase: dict[str, int]
    pools: list[str]
    latency_cost_s: float | None
    gpu_hours: float | None
    worst: str


def _evidence_text(raw: str | None) -> str:
    """evidence_json as 'key value; key value' (plain text: escaped by the template)."""
    if not raw:
        return "—"
    try:
        ev = json.loads(raw)
    except (TypeError, ValueError):
        return str(raw)
    if not isinstance(ev, dict):
        return str(ev)
    parts = []
    for k, v in ev.items():
        if v is None:
            continue
        if isinstance(v, float):
            v = f"{v:.3g}"
        elif isinstance(v, list):
            v = f"{len(v)} items"
        parts.append(f"{str(k).replace('_', ' ')} {v}")
    return "; ".join(parts)


def patterns(w: Reader) -> tuple[list[Part], list[PatternSummary]]:
    tested = w.q("patterns_tested", "SELECT * FROM patterns_tested WHERE pilot = ?")
    fcols = w.cols("findings")
    if tested.is_empty() and not fcols:
        return [not_in_run("the pattern detectors' tables (patterns_tested, findings) are not "
                           "in the warehouse, so no pattern is reported as found or as absent")
                ], []
    parts: list[Part] = []
    summaries: list[PatternSummary] = []
    det = pl.DataFrame()
    if fcols:
        det = w.q("findings", """SELECT phase, pattern, scope_pool,
                    len(scope_gpus) AS n_gpus, start_ts, end_ts, evidence_json,
                    CAST(severity AS VARCHAR) AS severity,
                    CAST(latency_cost_s AS DOUBLE) AS latency_cost_s,
                    CAST(gpu_hours_lost AS DOUBLE) AS gpu_hours_lost
                  FROM findings WHERE pilot = ? AND detected
                  ORDER BY pattern, start_ts""")
    if not tested.is_empty():
        rows = [[pattern_label(r["pattern"]), "yes" if r["tested"] else "no",
                 "found" if r["found"] else ("not found" if r["tested"] else "—"),
                 # an untested detector has no count of zero findings: it did not look
                 fmt.count(r.get("findings")) if r["tested"] else "—",
                 fmt.count(r.get("candidates")) if r["tested"] else "—",
                 r.get("reason") or ""] for r in tested.iter_rows(named=True)]
        n_t = int(tested["tested"].sum())
        n_f = int(tested["found"].sum())
        parts.append(Part(
            "Patterns tested", [f"{n_t} of {tested.height} patterns could be tested on this "
                                f"pilot's telemetry; {n_f} were found (at least one candidate "
                                f"crossed its threshold) and {n_t - n_f} were tested but not "
                                f"found. Detection rules: METRICS.md, Patterns (appendix A)."],
            tables=[Table("Every pattern, tested or not (patterns_tested)",
                          ["Pattern", "Tested", "Result", "Findings", "Candidates", "Reason"],
                          rows, num_cols=(3, 4))]))
    if not det.is_empty():
        for pat in det["pattern"].unique(maintain_order=True).to_list():
            d = det.filter(pl.col("pattern") == pat)
            by_phase = {r["phase"] or "—": r["len"]
                        for r in d.group_by("phase").len().sort("phase").iter_rows(named=True)}
            pools = sorted({p for p in d["scope_pool"].to_list() if p})
            lat = d["latency_cost_s"].drop_nulls()
            gh = d["gpu_hours_lost"].drop_nulls()
            worst = max((s for s in d["severity"].to_list() if s),
                        key=lambda s: SEVERITY_RANK.get(s, 0), default="—")
            s = PatternSummary(pat, pattern_label(pat), d.height, by_phase, pools,
                               float(lat.sum()) if lat.len() else None,
                               float(gh.sum()) if gh.len() else None, worst)
            summaries.append(s)
            top = d.sort(["latency_cost_s", "start_ts"], descending=[True, False],
                         nulls_last=True).head(MAX_EVIDENCE_ROWS)
            ev_rows = [[r["phase"] or "—", r["scope_pool"] or "all pools",
                        fmt.count(r["n_gpus"]) if r["n_gpus"] is not None else "—",
                        fmt.ts(r["start_ts"]), fmt.ts(r["end_ts"]), r["severity"] or "—",
                        fmt.long_duration(r["latency_cost_s"]) if r["latency_cost_s"] is not None
                        else "—", _evidence_text(r["evidence_json"])]
                       for r in top.iter_rows(named=True)]
            more = d.height - top.height
            chain = ("Chain of events, per finding: the evidence column lists the numbers "
                     "that triggered it, in the detector's order.")
            parts.append(Part(
                s.label, [_pattern_sentence(s)], anchor=pattern_anchor(pat),
                tables=[Table(f"Evidence: {s.label}", ["Phase", "Pool", "GPUs", "Start", "End",
                                                        "Severity", "Latency cost",
                                                        "Evidence"], ev_rows,
                              num_cols=(2, 6), nowrap_cols=(0, 1, 5),
                              anchor=pattern_anchor(pat) + "-t",
                              note=(f"{more} further findings not listed (sorted by latency "
                                    f"cost). " if more > 0 else "") + chain)]))
    not_found = [r for r in tested.iter_rows(named=True) if r["tested"] and not r["found"]] \
        if not tested.is_empty() else []
    untested = [r for r in tested.iter_rows(named=True) if not r["tested"]] \
        if not tested.is_empty() else []
    if not_found or untested:
        parts.append(Part("Tested but not found, and not tested", bullets=[
            f"{pattern_label(r['pattern'])}: tested, not found — {r['reason']}."
            for r in not_found] + [f"{pattern_label(r['pattern'])}: {r['reason']}."
                                   for r in untested]))
    scores = w.q("detector_scores", "SELECT * FROM detector_scores WHERE pilot = ?")
    if not scores.is_empty():
        parts.append(Part("Detector accuracy on injected events", [
            "Precision and recall of each detector against the events injected into this "
            "pilot's telemetry (simulated pilots only)."], tables=[Table(
                "Detector scores (detector_scores)", ["Pattern", "TP", "FP", "FN", "Precision",
                                                      "Recall"],
                [[pattern_label(r["pattern"]), fmt.count(r["tp"]), fmt.count(r["fp"]),
                  fmt.count(r["fn"]), fmt.value(r["precision"], "share"),
                  fmt.value(r["recall"], "share")] for r in scores.iter_rows(named=True)],
                num_cols=(1, 2, 3, 4, 5))]))
    return parts, summaries


def _pattern_sentence(s: PatternSummary) -> str:
    phases = ", ".join(f"{n} in {p}" for p, n in s.by_phase.items())
    text = (f"{s.findings} findings ({phases})"
            + (f" in {len(s.pools)} pools ({', '.join(s.pools[:6])}"
               f"{', …' if len(s.pools) > 6 else ''})" if s.pools else "")
            + f"; highest severity {s.worst}")
    if s.latency_cost_s is not None:
        text += f"; summed latency cost {fmt.long_duration(s.latency_cost_s)}"
    if s.gpu_hours is not None:
        text += f"; {s.gpu_hours:,.1f} GPU-hours lost"
    return text + " (measured, findings table)."


def top_findings(summaries: Sequence[PatternSummary], n: int = 3) -> list[Finding]:
    """The largest baseline findings by severity word, then latency cost, then count."""
    ranked = sorted(summaries, key=lambda s: (-SEVERITY_RANK.get(s.worst, 0),
                                              -(s.latency_cost_s or 0), -s.findings))
    out = []
    for s in ranked[:n]:
        metric = BY_NAME.get(PATTERNS.get(s.pattern, ("", ""))[1])
        out.append(Finding(s.label, _pattern_sentence(s), metric.label if metric else "—",
                           float(SEVERITY_RANK.get(s.worst, 0)), href="#" + pattern_anchor(
                               s.pattern), cite="findings table, all phases",
                           severity_label=s.worst))
    return out




def untested_patterns(w: Reader) -> tuple[int, int] | None:
    """(patterns not tested, patterns in patterns_tested), or None without the table."""
    t = w.q("patterns_tested", "SELECT count(*) FILTER (WHERE NOT tested) AS u, count(*) AS n "
                               "FROM patterns_tested WHERE pilot = ?")
    if t.is_empty() or not t["n"][0]:
        return None
    return int(t["u"][0]), int(t["n"][0])
