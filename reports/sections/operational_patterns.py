"""Section 3: identified operational patterns (patterns_tested, findings, detector_scores)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from pipelines.metric_catalog import BY_NAME
from reports import fmt
from reports.evidence import evidence_sentence, one_row_per_job
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
        # older warehouses have no attribution columns: no share is shown then
        share = ("CAST(queue_wait_share AS DOUBLE)" if "queue_wait_share" in fcols
                 else "CAST(NULL AS DOUBLE)")
        det = w.q("findings", f"""SELECT phase, pattern, scope_pool,
                    len(scope_gpus) AS n_gpus, start_ts, end_ts, evidence_json,
                    CAST(severity AS VARCHAR) AS severity,
                    CAST(latency_cost_s AS DOUBLE) AS latency_cost_s,
                    CAST(gpu_hours_lost AS DOUBLE) AS gpu_hours_lost,
                    {share} AS queue_wait_share
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
            # a multi-GPU job appears once per GPU in findings: one evidence row per job
            ranked = one_row_per_job(d.sort(["latency_cost_s", "start_ts"],
                                            descending=[True, False],
                                            nulls_last=True).iter_rows(named=True))
            top = ranked[:MAX_EVIDENCE_ROWS]
            ev_rows = [[r["phase"] or "—", _scope_words(r["scope_pool"]),
                        fmt.count(r["n_gpus"]) if r["n_gpus"] is not None else "—",
                        fmt.ts(r["start_ts"]), fmt.ts(r["end_ts"]), r["severity"] or "—",
                        _cost_cell(r), evidence_sentence(pat, r["evidence_json"])]
                       for r in top]
            more = len(ranked) - len(top)
            chain = ("Chain of events, per finding: the evidence column lists the numbers "
                     "that triggered it, in the detector's order.")
            parts.append(Part(
                s.label, [_pattern_sentence(s)], anchor=pattern_anchor(pat),
                tables=[Table(f"Evidence: {s.label}", ["Phase", "Pool", "GPUs", "Start", "End",
                                                        "Severity", "Attributed queue wait",
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
    scores = detector_scores_table(w)
    if scores is not None:
        parts.append(Part("Detector accuracy on injected events", [
            DETECTOR_SCORES_TEXT], tables=[scores]))
    return parts, summaries


DETECTOR_SCORES_TEXT = (
    "Simulated pilots only: each detector is scored against the events injected into this "
    "pilot's telemetry, at the level it reports (a job, an episode, or a pool or segment "
    "phase), with one reference set for precision and recall. Chance is the same detections "
    "moved at random within their pool, averaged over 20 seeded draws: a detector is useful "
    "where it beats chance, not where it merely scores high (pipelines/analytics/scoring.py).")


def detector_scores_table(w: Reader) -> Table | None:
    """detector_scores of the pilot as a report table, or None when the pilot has none (a real
    pilot has no ground truth). Shown in section 3 and in the methodology appendix."""
    if "chance_precision" not in w.cols("detector_scores"):
        return None
    scores = w.q("detector_scores", "SELECT * FROM detector_scores WHERE pilot = ?")
    if scores.is_empty():
        return None

    def share(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}"

    rows = [[pattern_label(r["pattern"]), r["level"], fmt.count(r["tp"]), fmt.count(r["fp"]),
             fmt.count(r["fn"]), share(r["precision"]), share(r["chance_precision"]),
             share(r["recall"]), share(r["chance_recall"]), r["reference"]]
            for r in scores.iter_rows(named=True)]
    return Table("Detector scores against injected events (detector_scores)",
                 ["Pattern", "Level", "TP", "FP", "FN", "Precision", "Chance precision",
                  "Recall", "Chance recall", "Reference"], rows,
                 num_cols=(2, 3, 4, 5, 6, 7, 8), nowrap_cols=(1,),
                 note="TP: detections matching a reference event; FP: the other detections; "
                      "FN: reference events no detection matched. Precision and recall use "
                      "the same reference set. Chance: detections moved at random within their "
                      "pool (20 seeded draws).")


def _scope_words(scope: str | None) -> str:
    """A findings scope as a reader says it: a pool by name, a segment as a segment."""
    if not scope:
        return "all pools"
    return f"the {scope[len('segment:'):]} segment" if scope.startswith("segment:") else scope


def _scopes_words(scopes: list[str]) -> str:
    pools = [p for p in scopes if not p.startswith("segment:")]
    segs = [p[len("segment:"):] for p in scopes if p.startswith("segment:")]
    out = []
    if pools:
        out.append(f"{len(pools)} pool{'s' if len(pools) != 1 else ''} ({', '.join(pools[:6])}"
                   f"{', …' if len(pools) > 6 else ''})")
    if segs:
        out.append(f"the {' and '.join(segs)} segment{'s' if len(segs) != 1 else ''}")
    return " and ".join(out)


def _cost_cell(r: dict) -> str:
    """Attributed queue wait and its share of the phase's total queue wait (findings)."""
    if r.get("latency_cost_s") is None:
        return "—"
    text = fmt.long_duration(r["latency_cost_s"])
    share = r.get("queue_wait_share")
    return text if share is None else f"{text} ({fmt.value(share, 'share')} of total queue wait)"


def _pattern_sentence(s: PatternSummary) -> str:
    phases = ", ".join(f"{n} in {p}" for p, n in s.by_phase.items())
    text = (f"{s.findings} findings ({phases})"
            + (f" in {_scopes_words(s.pools)}" if s.pools else "")
            + f"; highest severity {s.worst}")
    if s.latency_cost_s is not None:
        text += f"; attributed queue wait {fmt.long_duration(s.latency_cost_s)}"
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
