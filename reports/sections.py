"""Sections 3–6, 9–11 and appendices C, D and data quality, as generic parts (text + tables).

Every sentence here is assembled from a table the pipeline built; where the table is absent or
empty the section says so in one line. Nothing is computed beyond reading, grouping and
counting rows for display — metric values come from the metric tables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from pipelines.metric_catalog import BY_NAME, HEADLINE, Metric
from reports import fmt
from reports.types import Finding, Part, Table

MAX_EVIDENCE_ROWS = 5  # per pattern: the most costly findings; the count says how many more


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


# ---------------------------------------------------------------------------------------------
# Section 3: identified operational patterns


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
                 fmt.count(r.get("findings")), fmt.count(r.get("candidates")),
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


# ---------------------------------------------------------------------------------------------
# Section 4: topology and wave analysis


def _dec(v: Any) -> float | None:
    return None if v is None else float(v)


def topology(w: Reader, sla_target: float) -> list[Part]:
    parts: list[Part] = []
    amp = w.q("burst_amplification", """SELECT phase, pool, start_ts,
                CAST(duration_s AS DOUBLE) AS duration_s, rate_ratio, wait_p95_s,
                amplification, amplified FROM burst_amplification WHERE pilot = ?
                ORDER BY amplification DESC NULLS LAST, start_ts""")
    eps = w.q("burst_episodes", "SELECT phase, count(*) AS n FROM burst_episodes "
                                "WHERE pilot = ? GROUP BY ALL ORDER BY phase")
    if not amp.is_empty():
        by = amp.group_by("phase").agg(pl.len().alias("n"), pl.col("amplified").sum().alias(
            "a")).sort("phase")
        sent = "; ".join(f"{r['phase']}: {r['a']} of {r['n']} episodes amplified (queue-wait "
                         f"P95 grew faster than the arrival rate)"
                         for r in by.iter_rows(named=True))
        rows = [[r["phase"] or "—", r["pool"], fmt.ts(r["start_ts"]),
                 fmt.value(r["duration_s"], "s"), fmt.value(r["rate_ratio"], "ratio"),
                 fmt.value(r["wait_p95_s"], "s"), fmt.value(r["amplification"], "ratio"),
                 "yes" if r["amplified"] else "no"] for r in amp.head(10).iter_rows(named=True)]
        parts.append(Part("Burst episodes and amplification", [sent + " (measured)."], tables=[
            Table(f"Most amplified burst episodes (10 of {amp.height}; burst_amplification)",
                  ["Phase", "Pool", "Start", "Duration", "Rate ÷ median", "Wait P95",
                   "Amplification", "Amplified"], rows, num_cols=(3, 4, 5, 6))]))
    elif not eps.is_empty():
        parts.append(Part("Burst episodes", [", ".join(
            f"{r['n']} burst episodes in {r['phase']}" for r in eps.iter_rows(named=True))
            + " (measured, burst_episodes); amplification is not measured in this run."]))
    else:
        parts.append(Part("Burst episodes", ["No burst episodes in the warehouse."]))

    bu = w.q("arrival_burstiness", """SELECT phase, pool, arrivals, interarrival_cv,
                gamma_shape_k, index_of_dispersion FROM arrival_burstiness WHERE pilot = ?
                ORDER BY phase, pool = '(all pools)' DESC, pool""")
    if not bu.is_empty():
        parts.append(Part("Arrival burstiness", [
            "Coefficient of variation of inter-arrival times, Gamma shape k = 1/CV² (k = 1 "
            "Poisson, k < 1 burstier) and index of dispersion of counts per burst window, "
            "first attempts only (measured)."], tables=[Table(
                "Arrival burstiness (arrival_burstiness)",
                ["Phase", "Pool", "Arrivals", "CV", "Gamma k", "Dispersion"],
                [[r["phase"], r["pool"], fmt.count(r["arrivals"]),
                  _num(r["interarrival_cv"]), _num(r["gamma_shape_k"]),
                  _num(r["index_of_dispersion"])] for r in bu.iter_rows(named=True)],
                num_cols=(2, 3, 4, 5))]))

    qz = w.q("queue_saturation_zones", """SELECT phase, pool, start_ts, minutes,
                peak_wait_p95_s, CAST(max_queue_depth AS DOUBLE) AS depth,
                CAST(timeouts AS DOUBLE) AS timeouts FROM queue_saturation_zones
                WHERE pilot = ? ORDER BY minutes DESC, start_ts""")
    if w.has("queue_saturation_zones"):
        tot = qz.group_by("phase").agg(pl.len().alias("n"), pl.col("minutes").sum().alias(
            "m")).sort("phase") if not qz.is_empty() else qz
        parts.append(Part("Queue saturation zones", [
            ("; ".join(f"{r['phase']}: {r['n']} zones, {r['m']} pool-minutes with queue-wait "
                       f"P95 above half the SLA target" for r in tot.iter_rows(named=True))
             + " (measured).") if not qz.is_empty() else
            "No pool-minute had a queue-wait P95 above half its SLA target (measured)."],
            tables=[Table(f"Longest queue saturation zones (up to 10 of {qz.height})",
                          ["Phase", "Pool", "Start", "Minutes", "Peak wait P95",
                           "Max queue depth", "Timeouts"],
                          [[r["phase"] or "—", r["pool"], fmt.ts(r["start_ts"]),
                            fmt.count(r["minutes"]), fmt.value(r["peak_wait_p95_s"], "s"),
                            fmt.count(r["depth"]), fmt.count(r["timeouts"])]
                           for r in qz.head(10).iter_rows(named=True)],
                          num_cols=(3, 4, 5, 6))] if not qz.is_empty() else []))
    else:
        parts.append(Part("Queue saturation zones", ["Not in this run: no "
                                                     "queue_saturation_zones table."]))

    parts.append(slot_locking(w))

    cp = w.q("latency_cascade_paths", """SELECT phase, from_pool, to_pool, episodes, waves,
                share, mean_lag_s, mean_strength FROM latency_cascade_paths
                WHERE pilot = ? AND waves > 0 ORDER BY phase, share DESC, waves DESC""")
    if w.has("latency_cascade_paths"):
        parts.append(Part("Latency cascade paths", [
            (f"{cp.height} pool → pool edges carried at least one latency wave (a burst in "
             f"the source pool followed by a P95 rise in the target within the wave lag); "
             f"drawn in visual appendix 8 (measured).") if not cp.is_empty() else
            "No burst episode was followed by a latency wave in another pool (measured)."],
            tables=[Table("Cascade edges with waves (latency_cascade_paths)",
                          ["Phase", "From", "To", "Episodes", "Waves", "Share", "Mean lag",
                           "Strength"],
                          [[r["phase"] or "—", r["from_pool"], r["to_pool"],
                            fmt.count(r["episodes"]), fmt.count(r["waves"]),
                            fmt.value(r["share"], "share"), fmt.value(r["mean_lag_s"], "s"),
                            fmt.value(r["mean_strength"], "ratio")]
                           for r in cp.head(12).iter_rows(named=True)],
                          num_cols=(3, 4, 5, 6, 7))] if not cp.is_empty() else []))
    else:
        parts.append(Part("Latency cascade paths", ["Not in this run: no "
                                                    "latency_cascade_paths table."]))

    parts.append(sla_risk(w, sla_target))
    parts.append(disruptions(w))

    io = w.q("idle_overload_states", """SELECT phase, pool,
                count(*) FILTER (WHERE state = 'idle') AS idle,
                count(*) FILTER (WHERE state = 'balanced') AS balanced,
                count(*) FILTER (WHERE state = 'overload') AS overload,
                count(*) FILTER (WHERE state IS NULL) AS unknown,
                count(*) FILTER (WHERE flip) AS flips
                FROM idle_overload_states WHERE pilot = ? GROUP BY ALL ORDER BY phase, pool""")
    if not io.is_empty():
        flips = int(io["flips"].sum())
        parts.append(Part("Idle–overload zones", [
            f"{flips} idle ↔ overload flips within the flip window across all pools "
            f"(measured, idle_overload_states)."], tables=[Table(
                "Pool-minutes per state", ["Phase", "Pool", "Idle", "Balanced", "Overload",
                                           "Not measured", "Flips"],
                [[r["phase"] or "—", r["pool"], *(fmt.count(r[k]) for k in (
                    "idle", "balanced", "overload", "unknown", "flips"))]
                 for r in io.iter_rows(named=True)], num_cols=(2, 3, 4, 5, 6))]))
    else:
        parts.append(Part("Idle–overload zones", ["Not in this run: no idle_overload_states "
                                                  "rows."]))

    ix = w.q("indices", "SELECT phase, segment, index, value, unit, note FROM indices "
                        "WHERE pilot = ? ORDER BY index, phase, segment")
    if not ix.is_empty():
        parts.append(Part("Indices", ["Delay Index, Wave Propagation Index, Hidden Capacity "
                                      "Loss and Coherence Index per phase and segment "
                                      "(definitions in appendix A)."], tables=[Table(
            "Indices (indices table)", ["Index", "Phase", "Segment", "Value", "Note"],
            [[r["index"], r["phase"], r["segment"], _index_value(r["value"], r["unit"], r[
                "note"]), r["note"] or ""] for r in ix.iter_rows(named=True)], num_cols=(3,))]))
    return parts


def slot_locking(w: Reader) -> Part:
    """GPU slot-locking zones (slot_locking_zones), or which input is missing."""
    head = "GPU slot-locking zones"
    if not w.has("slot_locking_zones"):
        return Part(head, ["Not in this run: no slot_locking_zones table."])
    jobs = w.q("jobs", """SELECT count(*) AS n FROM jobs WHERE pilot = ? AND pool IS NOT NULL
                AND start_ts IS NOT NULL AND end_ts IS NOT NULL""")
    if jobs.is_empty() or not jobs["n"][0]:
        return Part(head, ["Not measured: the telemetry has no scheduler jobs with a pool and "
                           "run times, so GPUs held by long jobs cannot be located."])
    per = w.q("slot_locking_zones", """SELECT phase, count(*) AS zones,
                count(DISTINCT (pool, coalesce(gpu, zone_id))) AS gpus,
                sum(gpu_hours_locked) AS gpu_hours, max(duration_s) AS longest_s
                FROM slot_locking_zones WHERE pilot = ? GROUP BY ALL ORDER BY phase""")
    if per.is_empty():
        return Part(head, ["No long job held a GPU while inference attempts of its pool "
                           "queued (measured, slot_locking_zones)."])
    top = w.q("slot_locking_zones", """SELECT phase, pool, gpu, start_ts, duration_s,
                jobs, job_kinds, attempts_waiting, p0_p1_attempts_waiting, wait_added_s,
                CAST(json_extract(thresholds_json, '$.long_job_s') AS DOUBLE) AS long_job_s
                FROM slot_locking_zones WHERE pilot = ?
                ORDER BY wait_added_s DESC, start_ts LIMIT 10""")
    long_s = top["long_job_s"][0]
    sent = "; ".join(
        f"{r['phase'] or 'outside phases'}: {fmt.count(r['zones'])} zones on "
        f"{fmt.count(r['gpus'])} GPUs, {r['gpu_hours']:,.2f} GPU-hours held by long jobs "
        f"while inference waited (longest zone {fmt.long_duration(r['longest_s'])})"
        for r in per.iter_rows(named=True))
    return Part(head, [
        f"Intervals in which a job running longer than {fmt.value(long_s, 's')} held a GPU "
        f"while attempts of the same pool waited at least the scheduling-delay target. "
        f"{sent} (measured, slot_locking_zones)."],
        tables=[Table("Slot-locking zones with the most wait (up to 10; slot_locking_zones)",
                      ["Phase", "Pool", "GPU", "Start", "Duration", "Jobs", "Attempts "
                       "waiting", "P0/P1", "Wait in zone"],
                      [[r["phase"] or "—", r["pool"], r["gpu"] or "not listed",
                        fmt.ts(r["start_ts"]), fmt.long_duration(r["duration_s"]),
                        f"{fmt.count(r['jobs'])} ({', '.join(r['job_kinds'] or [])})",
                        fmt.count(r["attempts_waiting"]), fmt.count(r["p0_p1_attempts_waiting"]),
                        fmt.long_duration(r["wait_added_s"])]
                       for r in top.iter_rows(named=True)],
                      num_cols=(4, 6, 7, 8), wrap_cols=(2,), nowrap_cols=(0, 1),
                      note="Wait in zone: queue wait the attempts accrued while the GPU was "
                           "held (an upper bound of what freeing it could save); a job holding "
                           "several GPUs gives one zone per GPU.")])


def sla_risk(w: Reader, sla_target: float) -> Part:
    """Pool × 1-minute SLA risk levels (sla_risk_map), per phase and pool."""
    head = "SLA-risk map"
    if not w.has("sla_risk_map"):
        return Part(head, ["Not in this run: no sla_risk_map table."])
    d = w.q("sla_risk_map", """SELECT phase, pool, count(risk_level) AS minutes,
                count(*) FILTER (WHERE risk_level = 'ok') AS ok,
                count(*) FILTER (WHERE risk_level = 'at_risk') AS at_risk,
                count(*) FILTER (WHERE risk_level = 'breach') AS breach,
                count(*) FILTER (WHERE risk_level = 'critical') AS critical,
                min(sla_adherence) AS worst, any_value(note) AS note, min(sla_target) AS target
                FROM sla_risk_map WHERE pilot = ? GROUP BY ALL ORDER BY phase, pool""")
    if d.is_empty() or not d["minutes"].sum():
        note = next((n for n in d["note"].to_list() if n and n.startswith("not measured")),
                    None) if not d.is_empty() else None
        return Part(head, [f"Not measured: {note.removeprefix('not measured: ')}."
                           if note else "No pool-minute had requests (sla_risk_map)."])
    target = d["target"].drop_nulls()
    target_v = float(target[0]) if target.len() else sla_target
    d = d.filter(pl.col("minutes") > 0)
    tot = d.group_by("phase").agg(pl.col("minutes").sum(), (pl.col("breach") + pl.col(
        "critical")).sum().alias("below")).sort("phase")
    sent = "; ".join(f"{r['phase'] or 'outside phases'}: {fmt.share(r['below'], r['minutes'])}"
                     f" of {fmt.count(r['minutes'])} pool-minutes with requests below target"
                     for r in tot.iter_rows(named=True))
    return Part(head, [
        f"Per pool and 1-minute window, SLA adherence against the "
        f"{fmt.value(target_v, 'share')} target: ok, at risk (more than half of the error "
        f"budget 1 − target spent), breach (below target) or critical (more than twice the "
        f"budget spent). {sent} (measured, sla_risk_map)."],
        tables=[Table("SLA risk by pool: pool-minutes per level (sla_risk_map)",
                      ["Phase", "Pool", "Minutes", "OK", "At risk", "Breach", "Critical",
                       "Worst minute"],
                      [[r["phase"] or "—", r["pool"], *(fmt.count(r[k]) for k in (
                          "minutes", "ok", "at_risk", "breach", "critical")),
                        fmt.value(r["worst"], "share")] for r in d.iter_rows(named=True)],
                      num_cols=(2, 3, 4, 5, 6, 7))])


def disruptions(w: Reader) -> Part:
    """Pilot-wide disruption episodes (disruption_episodes, segment 'all')."""
    head = "Disruption episodes"
    if not w.has("disruption_episodes"):
        return Part(head, ["Not in this run: no disruption_episodes table."])
    d = w.q("disruption_episodes", """SELECT phase, start_ts, duration_s, time_to_recover_s,
                recovered, lowest_sla_adherence, peak_p95_s, max_timeout_rate, requests,
                requests_missed_sla, pools_below, burst_pool
                FROM disruption_episodes WHERE pilot = ? AND segment = 'all'
                ORDER BY requests_missed_sla DESC, start_ts""")
    if d.is_empty():
        return Part(head, ["No pilot-wide disruption episode (1-minute SLA adherence below "
                           "target) in the disruption_episodes table; where per-request rows "
                           "are missing this is not measured (visual appendix 4 says which)."])
    by = d.group_by("phase").agg(pl.len().alias("n"), pl.col("duration_s").sum().alias("s"),
                                 pl.col("requests_missed_sla").sum().alias("m")).sort("phase")
    sent = "; ".join(f"{r['phase'] or 'outside phases'}: {r['n']} episodes, "
                     f"{fmt.long_duration(r['s'])} in all, {fmt.count(r['m'])} requests "
                     f"missing the SLA" for r in by.iter_rows(named=True))
    return Part(head, [
        f"Episodes in which pilot-wide 1-minute SLA adherence fell below target, until it "
        f"held for the recovery time; {sent}. The worst is drawn in visual appendix 4 "
        f"(measured, disruption_episodes)."],
        tables=[Table(f"Disruption episodes by requests missing the SLA (up to 10 of "
                      f"{d.height}; disruption_episodes)",
                      ["Phase", "Start", "Duration", "To recover", "Lowest adherence",
                       "Peak P95", "Max timeout rate", "Missed SLA", "Pools below",
                       "Burst in"],
                      [[r["phase"] or "—", fmt.ts(r["start_ts"]),
                        fmt.long_duration(r["duration_s"]),
                        fmt.long_duration(r["time_to_recover_s"]) if r["recovered"]
                        else "not recovered", fmt.value(r["lowest_sla_adherence"], "share"),
                        fmt.value(r["peak_p95_s"], "s"), fmt.value(r["max_timeout_rate"],
                                                                    "share"),
                        f"{fmt.count(r['requests_missed_sla'])} of {fmt.count(r['requests'])}",
                        fmt.count(r["pools_below"]), r["burst_pool"] or "—"]
                       for r in d.head(10).iter_rows(named=True)],
                      num_cols=(2, 3, 4, 5, 6, 7, 8))])


def _index_value(v: float | None, unit: str | None, note: str | None) -> str:
    if v is None:
        return fmt.NOT_MEASURED
    if unit == "%":
        return f"{v:.1f} %"
    if unit == "pp":
        return fmt.value(v, "pp")
    return f"{v:.2f}"


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:,.2f}"


def _first_table(w: Reader, names: Sequence[str]) -> str | None:
    return next((n for n in names if w.has(n)), None)


def _generic_table(d: pl.DataFrame, caption: str, limit: int = 12) -> Table:
    cols = [c for c in d.columns if c != "pilot"]
    rows = [[_cell(r[c]) for c in cols] for r in d.head(limit).iter_rows(named=True)]
    return Table(caption, [c.replace("_", " ") for c in cols], rows,
                 note=f"{d.height - limit} more rows not shown." if d.height > limit else "")


def _cell(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3g}"
    if hasattr(v, "strftime"):
        return fmt.ts(v)
    return str(v)


# ---------------------------------------------------------------------------------------------
# Section 5: hidden operational losses


def losses(w: Reader, hx: dict, ci: dict, summaries: Sequence[PatternSummary]) -> list[Part]:
    def val(phase: str, name: str) -> str:
        r = hx.get((phase, "all", "overall", None, name))
        if r is None:
            return fmt.NOT_MEASURED
        if r["value"] is None:
            return f"{fmt.NOT_MEASURED} — {r.get('note') or 'no reason recorded'}"
        c = ci.get(("all", name)) or {}
        return fmt.two_lines(fmt.value(r["value"], BY_NAME[name].unit),
                             fmt.interval(c.get(f"{phase}_lo"), c.get(f"{phase}_hi"),
                                          BY_NAME[name].unit))

    rows = [[label, val("baseline", n), val("validation", n), src] for label, n, src in (
        ("Hidden capacity loss (HCL)", "hcl_pp", "metrics_headline"),
        ("Retry amplification (attempts per request)", "retry_amplification",
         "metrics_headline"),
        ("Non-productive queue waiting (DI)", "delay_index", "metrics_headline"),
        ("Energy per good request", "energy_per_good_request_j", "metrics_headline"))]
    inv = next((s for s in summaries if s.pattern == "priority_inversion"), None)
    if inv is not None:
        fd = w.q("findings", """SELECT phase, sum(CAST(latency_cost_s AS DOUBLE)) AS s
                    FROM findings WHERE pilot = ? AND detected AND pattern = 'priority_inversion'
                    GROUP BY phase""")
        by = {r["phase"]: r["s"] for r in fd.iter_rows(named=True)}
        rows.append(["Priority inversion loss (P0/P1 wait behind lower-priority or long "
                     "jobs)", fmt.long_duration(by.get("baseline")) if by.get("baseline")
                     is not None else "none found", fmt.long_duration(by.get("validation"))
                     if by.get("validation") is not None else "none found",
                     "findings (priority_inversion)"])
    elif w.has("findings"):
        rows.append(["Priority inversion loss", "none found", "none found",
                     "findings (priority_inversion)"])
    else:
        rows.append(["Priority inversion loss", fmt.NOT_MEASURED + " — no findings table",
                     fmt.NOT_MEASURED, "—"])
    sla_loss = _first_table(w, ("sla_loss", "sla_loss_without_shortage"))
    if sla_loss:
        d = w.q(sla_loss, f"SELECT * FROM {sla_loss} WHERE pilot = ?")
        extra = [_generic_table(d, f"SLA loss without capacity shortage ({sla_loss})")]
    else:
        extra = []
        rows.append(["SLA loss without capacity shortage", fmt.NOT_MEASURED + " — no table "
                     "relates SLA misses to spare capacity in this run", fmt.NOT_MEASURED, "—"])
    text = []
    h = hx.get(("baseline", "all", "overall", None, "hcl_pp"))
    nom = hx.get(("baseline", "all", "overall", None, "nominal_util"))
    if h and h["value"] is not None and nom and nom["value"] is not None:
        text.append(f"In the baseline, GPUs reported {fmt.value(nom['value'], 'share')} "
                    f"nominal utilization of which {fmt.value(h['value'], 'pp')} was not "
                    f"productive (HCL, measured).")
    r = hx.get(("baseline", "all", "overall", None, "retry_amplification"))
    if r and r["value"] is not None:
        text.append(f"Retries added {fmt.value(r['value'] - 1, 'share')} attempts on top of "
                    f"the logical requests (retry amplification {r['value']:.2f}, measured).")
    return [Part("", text, tables=[Table(
        "Hidden losses, all traffic (value and 95 % interval)",
        ["Loss", "Baseline", "Validation", "Source"], rows, num_cols=(1, 2),
        wrap_cols=(0, 3)), *extra])]


# ---------------------------------------------------------------------------------------------
# Section 6: what-if (modeled)


WHATIF_METRICS = ("p95_latency_s", "queue_wait_p95_s", "sla_adherence", "timeout_drop_rate",
                  "goodput_rps", "effective_util")


def _overall(d: pl.DataFrame) -> pl.DataFrame:
    return d.filter(pl.col("breakdown") == "overall") if "breakdown" in d.columns else d


FROM_ZERO = " from 0"  # marks a change printed in the metric's unit: today's replay was 0


def _predicted_text(r: dict[str, Any] | None, m: Metric) -> str:
    if r is None:
        return "—"
    change = r.get("predicted_change")
    if m.unit in ("share", "pp"):
        return fmt.change(change, m.unit)
    if r.get("rel_change") is None and change is not None and r.get("baseline_value") == 0:
        # whatif_results leaves rel_change null when today's replay is 0 (queue-wait P95 is
        # 0 s whenever fewer than 5 % of requests queue): a relative change is undefined,
        # the change in seconds is not
        return fmt.change(change, m.unit) + FROM_ZERO
    return fmt.rel(r.get("rel_change"))


def whatif(w: Reader) -> list[Part]:
    """The what-if table per policy and the simulator's own error (all modeled)."""
    res = _overall(w.q("whatif_results", "SELECT * FROM whatif_results WHERE pilot = ?"))
    if res.is_empty() or not {"policy", "metric"} <= set(res.columns):
        return [not_in_run("no what-if (modeled) results in the warehouse (whatif_results)")]
    if "segment" in res.columns:
        res = res.filter(pl.col("segment") == "all") if (res["segment"] == "all").any() else res
    by = {(r["policy"], r["metric"]): r for r in res.iter_rows(named=True)}
    metrics = [BY_NAME[n] for n in WHATIF_METRICS if any(k[1] == n for k in by)]
    rows = []
    for pol in res["policy"].unique(maintain_order=True).to_list():
        label = next((r.get("policies") for (p_, _), r in by.items() if p_ == pol
                      and r.get("policies")), None) or str(pol)
        rows.append([label.replace("_", " "), *(_predicted_text(by.get((pol, m.name)), m)
                                                for m in metrics)])
    from_zero = any(c.endswith(FROM_ZERO) for r in rows for c in r[1:])
    any_r = next(iter(by.values()))
    window = ""
    if any_r.get("replay_start") is not None and any_r.get("replay_end") is not None:
        window = (f" The replay covers {fmt.ts(any_r['replay_start'])} to "
                  f"{fmt.ts(any_r['replay_end'])}"
                  + (f" with {any_r['seeds']} seeds" if any_r.get("seeds") else "") + ".")
    parts = [Part("", ["Each policy was replayed by the discrete-event simulator on this "
                       "pilot's arrivals and observed service times; the change is relative "
                       "to the replay of today's policy (same seeds). Every figure in this "
                       "section is modeled, not measured." + window], tables=[Table(
                           "Predicted change per policy, all traffic (whatif_results)",
                           ["Policy", *(m.label for m in metrics)], rows, basis="modeled",
                           num_cols=tuple(range(1, len(metrics) + 1)), wrap_cols=(0,),
                           note="Changes in % are relative to today's replay; shares change "
                                "in percentage points. “from 0”: today's replay has 0 for "
                                "that metric, so the change is given in its unit (a relative "
                                "change from zero is undefined)." if from_zero else
                                "Changes in % are relative to today's replay; shares change "
                                "in percentage points.")])]
    err = w.q("whatif_model_error", "SELECT * FROM whatif_model_error WHERE pilot = ?")
    if not err.is_empty() and {"metric", "measured", "modeled"} <= set(err.columns):
        if {"segment", "comparison"} <= set(err.columns):  # one segment per comparison
            err = err.filter(((pl.col("comparison") == "baseline_replay")
                              & (pl.col("segment") == "all"))
                             | ((pl.col("comparison") != "baseline_replay")
                                & (pl.col("segment") == "treatment")))
        erows = []
        for r in err.iter_rows(named=True):
            m = BY_NAME.get(r["metric"])
            if m is None or not m.headline:
                continue
            comp = str(r.get("comparison") or "").replace("_", " ")
            erows.append([comp or "—", str(r.get("segment") or "all"), m.label,
                          fmt.change(r["measured"], m.unit) if "change" in comp
                          else fmt.value(r["measured"], m.unit),
                          fmt.change(r["modeled"], m.unit) if "change" in comp
                          else fmt.value(r["modeled"], m.unit), fmt.rel(r.get("error_rel"))])
        parts.append(Part("Simulator validation error", [
            "How far the simulator is from what was measured: “baseline replay” compares the "
            "replay of today's policy with the measured phase; “treatment change” compares "
            "the predicted change under the declared adjustments with the measured change."],
            tables=[Table("Model error (whatif_model_error)", ["Comparison", "Segment",
                                                               "Metric", "Measured",
                                                               "Modeled", "Error"],
                          erows, basis="measured, modeled", num_cols=(3, 4, 5))]))
    return parts


def predicted_for(w: Reader, adjustments: Sequence[str]) -> tuple[dict[str, dict[str, Any]],
                                                                  str]:
    """Modeled change per metric for the policy that matches the applied adjustments."""
    res = _overall(w.q("whatif_results", "SELECT * FROM whatif_results WHERE pilot = ?"))
    if res.is_empty() or "policy" not in res.columns:
        return {}, ""
    policies = res["policy"].unique().to_list()
    if "declared" in policies:  # the what-if's own replay of the pilot's adjustments
        best = "declared"
    else:
        want = {a.replace(" ", "_") for a in adjustments}

        def score(p: str) -> tuple[int, int]:
            names = set(re.split(r"[+,;|& ]+", str(p)))
            return (len(names & want), -len(names - want))

        best = max(policies, key=score)
        if score(best)[0] == 0:
            return {}, ""
    d = res.filter(pl.col("policy") == best)
    if "segment" in d.columns and (d["segment"] == "treatment").any():
        d = d.filter(pl.col("segment") == "treatment")
    label = next((r.get("policies") for r in d.iter_rows(named=True) if r.get("policies")),
                 None) or str(best)
    return {r["metric"]: r for r in d.iter_rows(named=True)}, str(label)


# ---------------------------------------------------------------------------------------------
# Sections 9–11


def interpretation(summaries: Sequence[PatternSummary], ci: dict, control: bool) -> list[Part]:
    if not ci:
        return [not_in_run("no confidence intervals (metrics_ci), so no change is interpreted")]
    seg = "treatment" if control else "all"
    bullets = []
    for s in summaries:
        m = BY_NAME.get(PATTERNS.get(s.pattern, ("", ""))[1])
        if m is None:
            continue
        r = ci.get((seg, m.name))
        base_n = s.by_phase.get("baseline", 0)
        val_n = s.by_phase.get("validation", 0)
        head = (f"{s.label}: {base_n} findings in the baseline, {val_n} in the validation "
                f"phase (findings table).")
        if r is None or r.get("change") is None:
            bullets.append(head + f" {m.label} is not measured, so its effect cannot be "
                                  f"judged.")
            continue
        words = _change_words(r, m, "change")
        tail = ""
        if control:
            did_sig = r.get("did_significant")
            if did_sig:
                tail = (f" Against the control segment the difference-in-differences is "
                        f"{fmt.change(r['did'], m.unit)} "
                        f"{fmt.change_interval(r['did_lo'], r['did_hi'], m.unit)}: the "
                        f"treatment {direction(r, m, 'did')} beyond the control's change.")
            elif did_sig is False:
                tail = (f" The difference-in-differences "
                        f"{fmt.change_interval(r['did_lo'], r['did_hi'], m.unit)} spans "
                        f"zero: no significant change relative to the control, so the "
                        f"change cannot be attributed to the adjustments.")
        bullets.append(f"{head} In the {'treatment segment' if control else 'pilot'} "
                       f"{m.label} {words}.{tail}")
    if not bullets:
        return [Part("", ["No pattern was found, so there is nothing to interpret beyond the "
                          "validated results of section 8."])]
    return [Part("", ["Each detected pattern is read against the headline metric it acts on "
                      "(95 % block-bootstrap intervals, metrics_ci)."], bullets=bullets)]


def _change_words(r: dict[str, Any], m: Metric, key: str) -> str:
    unit = m.unit
    if r.get("significant") is None:
        return f"moved from {fmt.value(r['baseline'], unit)} to " \
               f"{fmt.value(r['validation'], unit)} (no interval)"
    span = (fmt.change_interval(r["change_lo"], r["change_hi"], unit) if unit in ("share", "pp")
            else fmt.rel_interval(r["rel_change_lo"], r["rel_change_hi"]))
    amount = (fmt.change(r["change"], unit) if unit in ("share", "pp")
              else fmt.rel(r["rel_change"]))
    if not r["significant"]:
        return (f"showed no significant change ({fmt.value(r['baseline'], unit)} → "
                f"{fmt.value(r['validation'], unit)}, change {amount} {span})")
    return (f"{direction(r, m)} significantly ({fmt.value(r['baseline'], unit)} → "
            f"{fmt.value(r['validation'], unit)}, change {amount} {span})")


def conclusion(baseline_sentence: str, ci: dict, control: bool) -> list[Part]:
    texts = [baseline_sentence]
    if ci:
        key = "did_significant" if control else "significant"
        seg = "treatment" if control else "all"
        better, worse, flat, none = [], [], [], []
        for m in HEADLINE:
            r = ci.get((seg, m.name))
            if r is None or r.get(key) is None:
                none.append(m.label)
            elif not r[key]:
                flat.append(m.label)
            else:
                d = direction(r, m, "did" if control else "change")
                (better if d == "improved" else worse if d == "worsened" else flat).append(
                    m.label)
        ref = ("beyond the control segment's change (difference-in-differences interval "
               "excludes zero)" if control else "(95 % interval of the change excludes zero; "
               "no control segment, so the change is not separated from other causes)")
        texts.append(f"Of {len(HEADLINE)} headline metrics, {len(better)} improved {ref}"
                     + (f": {', '.join(better)}" if better else "") + f"; {len(worse)} worsened"
                     + (f" ({', '.join(worse)})" if worse else "")
                     + f"; {len(flat)} showed no significant change"
                     + (f" ({', '.join(flat)})" if flat else "")
                     + (f"; {len(none)} could not be tested ({', '.join(none)})" if none else "")
                     + " (measured, metrics_ci).")
    else:
        texts.append("Whether the validation changed the headline metrics cannot be concluded: "
                     "no confidence intervals were computed for this pilot.")
    return [Part("", texts)]


def next_steps(summaries: Sequence[PatternSummary], hx: dict, ci: dict, control: bool,
               sync_missing: list[str]) -> list[Part]:
    steps = []
    for s in summaries:
        n = s.by_phase.get("validation", 0)
        if n:
            steps.append(f"{s.label} is still detected in the validation phase ({n} findings, "
                         f"section 3): examine its evidence tables before extending the "
                         f"adjustments.")
    notes = {r.get("note") for k, r in hx.items() if k[2] == "overall" and r.get("value") is None
             and r.get("note")}
    for note in sorted(n for n in notes if n):
        steps.append(f"Collect the missing telemetry behind “{note}” so the affected metrics "
                     f"can be measured (appendix A).")
    for layer in sync_missing:
        steps.append(f"The {layer} layer of the synchronization map is not measured; add "
                     f"telemetry for it to judge that layer.")
    if control and ci:
        both = [BY_NAME[m].label for (seg, m), r in ci.items() if seg == "control"
                and r.get("significant") and m in BY_NAME and BY_NAME[m].headline]
        if both:
            more = ", …" if len(both) > 5 else ""
            steps.append(f"The control segment also changed significantly in {len(both)} "
                         f"metrics ({', '.join(both[:5])}{more}): look for a cause common to "
                         "both segments (load, release, time of day) before attributing those "
                         "changes.")
    if not steps:
        steps.append("No open pattern, missing telemetry or confounded change was found in "
                     "the tables of this run.")
    return [Part("", ["Derived from what the data left open:"], bullets=steps)]


# ---------------------------------------------------------------------------------------------
# Appendices C (observer-only), D (anonymization) and data quality

ID_COLUMNS = (("requests", "request_id"), ("requests", "parent_request_id"),
              ("requests", "node"), ("requests", "gpu"), ("samples", "node"),
              ("samples", "gpu"), ("jobs", "job_id"), ("jobs", "node"))


def _token_re() -> re.Pattern[str] | None:
    try:
        from pipelines.anonymize import TOKEN_RE
    except ImportError:  # the anonymizer is not part of this installation
        return None
    return TOKEN_RE


def identifier_check(w: Reader) -> tuple[Table, int, int]:
    """Distinct identifier values per column and how many have the token form."""
    rx = _token_re()
    rows = []
    total = tokens = 0
    for table, col in ID_COLUMNS:
        if col not in w.cols(table):
            continue
        # distinct first, then the regex on each distinct value once: one hash table instead
        # of two and ~3x less CPU on a million request ids
        d = w.q(table, f"""SELECT count(*) AS n,
                    count(*) FILTER (WHERE regexp_full_match(v, $2)) AS t
                    FROM (SELECT DISTINCT {col} AS v FROM {table}
                          WHERE pilot = $1 AND {col} IS NOT NULL)""",
                rx.pattern if rx else "^$")
        n, t = int(d["n"][0] or 0), int(d["t"][0] or 0)
        if not n:
            continue
        total += n
        tokens += t
        rows.append([f"{table}.{col}", fmt.count(n), fmt.count(t), fmt.share(t, n)])
    return (Table("Identifier columns in the warehouse: distinct values and keyed tokens",
                  ["Column", "Distinct values", "In token form", "Share"], rows, basis=None,
                  num_cols=(1, 2, 3), empty="No identifier columns with values."), total, tokens)


def observer_only(w: Reader, config: dict[str, Any]) -> tuple[list[Part], list[Part]]:
    """Appendix C (what was read, dropped, tokenized) and D (the anonymization statement)."""
    log = w.q("ingest_log", """SELECT source_kind, target_table, count(*) AS files,
                sum(rows_in) AS rows_in, sum(rows_stored) AS stored,
                sum(rows_quarantined) AS quarantined, sum(bytes) AS bytes
                FROM ingest_log WHERE pilot = ? GROUP BY ALL ORDER BY source_kind""")
    read = Part("What was read", [
        "The pipeline only reads telemetry files an operator exported into the pilot's landing "
        "folder; it opens no connection to the cluster and changes nothing there. Files read, "
        "per source kind (ingest_log):"], tables=[Table(
            "Files read per source kind", ["Kind", "Table", "Files", "Bytes", "Rows in",
                                           "Stored", "Quarantined"],
            [[r["source_kind"], r["target_table"] or "—", fmt.count(r["files"]),
              fmt.count(r["bytes"]), fmt.count(r["rows_in"]), fmt.count(r["stored"]),
              fmt.count(r["quarantined"])] for r in log.iter_rows(named=True)], basis=None,
            num_cols=(2, 3, 4, 5, 6), empty="No files recorded in ingest_log.")])
    if w.has("dropped_fields"):
        dr = w.q("dropped_fields", """SELECT field, sum(count) AS n, count(DISTINCT file) AS
                    files FROM dropped_fields WHERE pilot = ? GROUP BY field
                    ORDER BY n DESC, field""")
        dropped = Part("What was dropped", [
            (f"{dr.height} field names were dropped at the adapters, {fmt.count(dr['n'].sum())}"
             f" values in all; only the field name and a count are kept, never a value.")
            if not dr.is_empty() else
            "No payload-like or unmapped field was present in the inputs, so nothing was "
            "dropped (dropped_fields is empty for this pilot)."],
            tables=[Table("Dropped fields (dropped_fields)", ["Field", "Values dropped",
                                                              "Files"],
                          [[r["field"], fmt.count(r["n"]), fmt.count(r["files"])]
                           for r in dr.iter_rows(named=True)], basis=None, num_cols=(1, 2),
                          wrap_cols=(0,))] if not dr.is_empty() else [])
    else:
        dropped = Part("What was dropped", ["Not recorded in this run: the warehouse has no "
                                            "dropped_fields table, so dropped payload fields "
                                            "cannot be listed."])
    ids, total, tokens = identifier_check(w)
    rx = _token_re()
    secret_env = (config.get("anonymization") or {}).get("secret_env")
    if rx is None:
        how = ("This installation has no anonymizer: identifiers are stored as received from "
               "the inputs.")
        state = "stored as received"
    elif total and tokens == total:
        how = (f"All {fmt.count(total)} distinct identifier values in the warehouse have the "
               f"keyed-token form <kind>-<16 hex digits>: HMAC-SHA-256 keyed with the pilot's "
               f"secret" + (f" (read from the environment variable {secret_env})"
                            if secret_env else "")
               + ", truncated and prefixed by the identifier's kind.")
        state = "tokenized"
    elif total:
        how = (f"{fmt.count(total - tokens)} of {fmt.count(total)} distinct identifier values "
               f"do not have the keyed-token form: those identifiers are stored as received "
               f"(for example because the data was loaded before anonymization was enabled).")
        state = "partly stored as received"
    else:
        how = "No identifier values are present in the warehouse."
        state = "absent"
    anon = Part("How identifiers were anonymized", [how], tables=[ids])
    security = Part("Data security model", [
        "The warehouse is a local DuckDB file; the report is built from it alone, embeds no "
        "external resource and contains no raw input line: quarantined records keep file, "
        "position and reason only. Text taken from telemetry (pool names, fields) is escaped "
        "before it reaches the page."])
    statement = Part("", [
        f"Identifiers in this report and its warehouse are {state}."
        + (f" {fmt.count(tokens)} distinct keyed tokens replace the request, node, GPU and "
           f"job identifiers; without the pilot's secret they cannot be turned back into the "
           f"original names, and the same input always yields the same token within this "
           f"pilot." if state == "tokenized" else "")
        + (" Payload-like fields were dropped and only counted (appendix C)."
           if w.has("dropped_fields") else ""),
        "Pool names, model classes and priority classes are configuration labels, not "
        "identifiers, and are shown as received."])
    return [read, dropped, anon, security], [statement]


def data_quality(w: Reader) -> list[Part]:
    parts = []
    qr = w.q("quality_results", """SELECT table_name, "check", passed, observed, expected
                FROM quality_results WHERE pilot = ? ORDER BY passed, table_name, "check" """)
    if w.has("quality_results") and not qr.is_empty():
        n, ok = qr.height, int(qr["passed"].sum())
        failed = qr.filter(~pl.col("passed"))
        per = qr.group_by("table_name").agg(pl.len().alias("n"), pl.col("passed").sum().alias(
            "ok")).sort("table_name")
        parts.append(Part("Checks run", [f"{n} checks ran, {ok} passed and {n - ok} failed "
                                         f"(quality_results)."],
                          tables=[Table("Checks per table", ["Table", "Checks", "Passed",
                                                             "Failed"],
                                        [[r["table_name"], fmt.count(r["n"]), fmt.count(r["ok"]),
                                          fmt.count(r["n"] - r["ok"])]
                                         for r in per.iter_rows(named=True)], basis=None,
                                        num_cols=(1, 2, 3)),
                                  Table("Failed checks", ["Table", "Check", "Observed",
                                                          "Expected"],
                                        [[r["table_name"], r["check"], r["observed"] or "—",
                                          r["expected"] or "—"]
                                         for r in failed.iter_rows(named=True)], basis=None,
                                        wrap_cols=(2, 3), empty="No check failed.")]))
    else:
        parts.append(Part("Checks run", ["Not in this run: no quality_results rows, so only "
                                         "the ingest reconciliation below was checked."]))
    log = w.q("ingest_log", """SELECT file, rows_in, rows_stored, rows_quarantined,
                rows_in = rows_stored + rows_quarantined AS ok FROM ingest_log
                WHERE pilot = ? ORDER BY source_index, file""")
    bad = log.filter(~pl.col("ok")) if not log.is_empty() else log
    parts.append(Part("Ingest reconciliation", [
        (f"Rows in = rows stored + rows quarantined held for {log.height - bad.height} of "
         f"{log.height} files." if not log.is_empty() else "No files in ingest_log.")],
        tables=[Table("Files that do not reconcile", ["File", "Rows in", "Stored",
                                                      "Quarantined"],
                      [[r["file"], fmt.count(r["rows_in"]), fmt.count(r["rows_stored"]),
                        fmt.count(r["rows_quarantined"])] for r in bad.iter_rows(named=True)],
                      basis=None, num_cols=(1, 2, 3), wrap_cols=(0,),
                      empty="Every file reconciles.")]))
    qd = w.q("quarantine", """SELECT coalesce(target_table, '—') AS t, reason, count(*) AS n
                FROM quarantine WHERE pilot = ? GROUP BY ALL ORDER BY n DESC, reason""")
    parts.append(Part("Rows quarantined by reason", [
        f"{fmt.count(qd['n'].sum()) if not qd.is_empty() else '0'} rows were quarantined."],
        tables=[Table("Quarantined rows by reason", ["Target table", "Reason", "Rows"],
                      [[r["t"], r["reason"], fmt.count(r["n"])]
                       for r in qd.iter_rows(named=True)], basis=None, num_cols=(2,),
                      wrap_cols=(1,), empty="No rows were quarantined.")]))
    return parts
