"""Section 4: operational topology and wave analysis (bursts, saturation, cascades, SLA risk,
disruptions, idle-overload states, indices)."""

from __future__ import annotations

from typing import Any

import polars as pl

from reports import fmt
from reports.coverage import Coverage
from reports.sections.common import (
    Reader,
    num,
)
from reports.types import Part, Table

MAX_CASCADE_ROWS = 12  # cascade edges listed; the caption says how many exist


def _dec(v: Any) -> float | None:
    return None if v is None else float(v)


def topology(w: Reader, sla_target: float, cov: Coverage) -> list[Part]:
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
            + " (measured, burst_episodes); burst amplification is "
            + (cov.not_tested("burst_amplification") if not cov.measured("burst_amplification")
               else "not in this run (no burst_amplification rows)") + "."]))
    elif cov.measured("burst_episodes"):
        parts.append(Part("Burst episodes", [
            "Burst episodes: none detected — no 10-second window's arrivals crossed the "
            "burst threshold (measured, burst_episodes)."]))
    else:
        parts.append(Part("Burst episodes", [
            f"Burst episodes: {cov.not_tested('burst_episodes')}."]))

    bu = w.q("arrival_burstiness", """SELECT phase, pool, arrivals, interarrival_cv,
                gamma_shape_k, index_of_dispersion FROM arrival_burstiness WHERE pilot = ?
                ORDER BY phase, pool = '(all pools)' DESC, pool""")
    if not bu.is_empty():
        parts.append(Part("Arrival burstiness", [
            "Coefficient of variation of inter-arrival times, Gamma shape k = 1/CV² (k = 1 "
            "Poisson, k < 1 burstier) and index of dispersion of counts per burst window, "
            f"from {_burstiness_basis(cov)} (measured)."], tables=[Table(
                "Arrival burstiness (arrival_burstiness)",
                ["Phase", "Pool", "Arrivals", "CV", "Gamma k", "Dispersion"],
                [[r["phase"], r["pool"], fmt.count(r["arrivals"]),
                  num(r["interarrival_cv"]), num(r["gamma_shape_k"]),
                  num(r["index_of_dispersion"])] for r in bu.iter_rows(named=True)],
                num_cols=(2, 3, 4, 5))]))

    qz = w.q("queue_saturation_zones", """SELECT phase, pool, start_ts, minutes,
                peak_wait_p95_s, CAST(max_queue_depth AS DOUBLE) AS depth,
                CAST(timeouts AS DOUBLE) AS timeouts FROM queue_saturation_zones
                WHERE pilot = ? ORDER BY minutes DESC, start_ts""")
    if w.has("queue_saturation_zones") and qz.is_empty() and not cov.exact("queue_wait",
                                                                           "sla_adherence"):
        parts.append(Part("Queue saturation zones", [
            "Queue saturation zones (queue-wait P95 above half the SLA target): "
            + cov.not_tested("queue_wait", "sla_adherence", exact=True) + "."]))
    elif w.has("queue_saturation_zones"):
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

    parts.append(slot_locking(w, cov))

    cp = w.q("latency_cascade_paths", """SELECT phase, from_pool, to_pool, episodes, waves,
                share, mean_lag_s, mean_strength FROM latency_cascade_paths
                WHERE pilot = ? AND waves > 0
                ORDER BY phase, share DESC, waves DESC, from_pool, to_pool""")
    if w.has("latency_cascade_paths") and cp.is_empty() and not cov.exact("latency_waves",
                                                                          "burst_episodes"):
        parts.append(Part("Latency cascade paths", [
            "Latency waves after bursts: "
            + cov.not_tested("burst_episodes", "latency_waves", exact=True) + "."]))
    elif w.has("latency_cascade_paths"):
        per_phase = {p: cp.filter(pl.col("phase") == p).height
                     for p in cp["phase"].unique(maintain_order=True).to_list()} \
            if not cp.is_empty() else {}
        shown = cp.head(MAX_CASCADE_ROWS)
        text = (f"{cp.height} pool → pool edges carried at least one latency wave (a burst in "
                f"the source pool followed by a P95 rise in the target within the wave lag): "
                + ", ".join(f"{n} in the {p or 'unphased'} phase" for p, n in per_phase.items())
                + f". The table lists {shown.height} of them (by phase, then share); figure V8 "
                f"at the end of this section draws the baseline's "
                f"{per_phase.get('baseline', 0)} (measured).") if not cp.is_empty() else \
            "No burst episode was followed by a latency wave in another pool (measured)."
        parts.append(Part("Latency cascade paths", [text],
            tables=[Table(f"Cascade edges with waves, {shown.height} of {cp.height} "
                          f"(latency_cascade_paths)",
                          ["Phase", "From", "To", "Episodes", "Waves", "Share", "Mean lag",
                           "Strength"],
                          [[r["phase"] or "—", r["from_pool"], r["to_pool"],
                            fmt.count(r["episodes"]), fmt.count(r["waves"]),
                            fmt.value(r["share"], "share"), fmt.value(r["mean_lag_s"], "s"),
                            fmt.value(r["mean_strength"], "ratio")]
                           for r in shown.iter_rows(named=True)],
                          num_cols=(3, 4, 5, 6, 7))] if not cp.is_empty() else []))
    else:
        parts.append(Part("Latency cascade paths", ["Not in this run: no "
                                                    "latency_cascade_paths table."]))

    parts.append(sla_risk(w, sla_target, cov))
    parts.append(disruptions(w, cov))

    io = w.q("idle_overload_states", """SELECT phase, pool,
                count(*) FILTER (WHERE state = 'idle') AS idle,
                count(*) FILTER (WHERE state = 'balanced') AS balanced,
                count(*) FILTER (WHERE state = 'overload') AS overload,
                count(*) FILTER (WHERE state = 'busy') AS busy,
                count(*) FILTER (WHERE state IS NULL) AS unknown,
                count(*) FILTER (WHERE flip) AS flips
                FROM idle_overload_states WHERE pilot = ? GROUP BY ALL ORDER BY phase, pool""")
    if not io.is_empty():
        parts.append(_idle_overload(io, cov))
    elif cov.known and not cov.measured("idle_overload_states"):
        parts.append(Part("Idle–overload zones", [
            f"Idle–overload states: {cov.not_measured('idle_overload_states')}."]))
    else:
        parts.append(Part("Idle–overload zones", ["Not in this run: no idle_overload_states "
                                                  "rows."]))

    ix = w.q("indices", "SELECT phase, segment, index, value, unit, note FROM indices "
                        "WHERE pilot = ? ORDER BY index, phase, segment")
    if not ix.is_empty():
        parts.append(Part("Indices", ["Delay Index (DI), Wave Propagation Index (WPI), Hidden "
                                      "Capacity Loss (HCL) and Coherence Index (CoI) per phase "
                                      "and segment (definitions in appendix A)."], tables=[Table(
            "Indices (indices table)", ["Index", "Phase", "Segment", "Value", "Note"],
            [[INDEX_NAMES.get(r["index"], r["index"]), r["phase"], _segment(r["segment"]),
              _index_value(r["value"], r["unit"], r["note"], r["index"]), r["note"] or ""]
             for r in ix.iter_rows(named=True)], num_cols=(3,))]))
    return parts


def _segment(seg: str | None) -> str:
    return {"all": "all traffic", "treatment": "treatment segment",
            "control": "control segment"}.get(seg or "", seg or "—")


def slot_locking(w: Reader, cov: Coverage) -> Part:
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
    if per.is_empty() and not cov.exact("queue_wait"):
        return Part(head, ["Slot locking (a long job holding a GPU while inference queued): "
                           + cov.not_tested("queue_wait", exact=True) + "."])
    if per.is_empty():
        return Part(head, ["No long job held a GPU while inference attempts of its pool "
                           "queued (measured, slot_locking_zones)."])
    top = w.q("slot_locking_zones", """SELECT phase, pool, gpu, start_ts, duration_s,
                jobs, job_kinds, attempts_waiting, p0_p1_attempts_waiting, wait_added_s,
                CAST(json_extract(thresholds_json, '$.long_job_s') AS DOUBLE) AS long_job_s
                FROM slot_locking_zones WHERE pilot = ?
                ORDER BY wait_added_s DESC, start_ts, pool, gpu LIMIT 10""")
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


def sla_risk(w: Reader, sla_target: float, cov: Coverage) -> Part:
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
        if note:
            return Part(head, [f"Not measured: {note.removeprefix('not measured: ')}."])
        if not cov.exact("sla_adherence"):
            why = cov.not_measured("sla_adherence", exact=True)
            return Part(head, [f"SLA risk per pool-minute: {why}."])
        return Part(head, ["No pool-minute had requests (sla_risk_map)."])
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


def disruptions(w: Reader, cov: Coverage) -> Part:
    """Pilot-wide disruption episodes (disruption_episodes, segment 'all')."""
    head = "Disruption episodes"
    if not w.has("disruption_episodes"):
        return Part(head, ["Not in this run: no disruption_episodes table."])
    d = w.q("disruption_episodes", """SELECT phase, start_ts, duration_s, time_to_recover_s,
                recovered, lowest_sla_adherence, peak_p95_s, max_timeout_rate, requests,
                requests_missed_sla, pools_below, burst_pool
                FROM disruption_episodes WHERE pilot = ? AND segment = 'all'
                ORDER BY requests_missed_sla DESC, start_ts""")
    if d.is_empty() and not cov.exact("sla_adherence"):
        return Part(head, ["Disruption episodes (pilot-wide 1-minute SLA adherence below "
                           f"target): {cov.not_tested('sla_adherence', exact=True)}."])
    if d.is_empty():
        return Part(head, ["No pilot-wide disruption episode: 1-minute SLA adherence never fell "
                           "below target (measured, disruption_episodes)."])
    by = d.group_by("phase").agg(pl.len().alias("n"), pl.col("duration_s").sum().alias("s"),
                                 pl.col("requests_missed_sla").sum().alias("m")).sort("phase")
    sent = "; ".join(f"{r['phase'] or 'outside phases'}: {r['n']} episodes, "
                     f"{fmt.long_duration(r['s'])} in all, {fmt.count(r['m'])} requests "
                     f"missing the SLA" for r in by.iter_rows(named=True))
    return Part(head, [
        f"Episodes in which pilot-wide 1-minute SLA adherence fell below target, until it "
        f"held for the recovery time; {sent}. The worst is drawn in figure V4 at the end of "
        f"this section (measured, disruption_episodes)."],
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


# Displayed names of the indices table's keys: "CI" is the Coherence Index, shown as CoI so it
# never reads as a confidence interval (the table key stays CI).
INDEX_NAMES = {"DI": "Delay Index (DI)", "HCL": "Hidden capacity loss (HCL)",
               "WPI": "Wave Propagation Index (WPI)", "CI": "Coherence Index (CoI)"}


def _index_value(v: float | None, unit: str | None, note: str | None,
                 index: str = "") -> str:
    if v is None or (note or "").startswith(fmt.NOT_MEASURED):
        return fmt.NOT_MEASURED
    if index == "DI":  # one format for DI everywhere: a share of latency, in %
        return fmt.value(v, "share")
    if unit == "%":
        return f"{v:.1f} %"
    if unit == "pp":
        return fmt.value(v, "pp")
    return f"{v:.2f}"




def _burstiness_basis(cov: Coverage) -> str:
    item = cov.get("arrival_burstiness")
    return item.basis if item and item.basis else "first attempts"


def _idle_overload(io: pl.DataFrame, cov: Coverage) -> Part:
    """Pool-minutes per state; flips only where overload could be tested (queue wait)."""
    overload = cov.exact("queue_wait") or bool(io["overload"].sum() or io["balanced"].sum())
    item = cov.get("idle_overload_states")
    if overload:
        text = (f"{int(io['flips'].sum())} idle ↔ overload flips within the flip window across "
                f"all pools (measured, idle_overload_states).")
        cols, keys = ["Idle", "Balanced", "Overload"], ("idle", "balanced", "overload")
    else:
        text = ("Idle / busy states from GPU utilization (measured, idle_overload_states); "
                "the overload state and idle ↔ overload flips are "
                + cov.not_tested("queue_wait", exact=True) + ".")
        cols, keys = ["Idle", "Busy"], ("idle", "busy")
    if item and item.unlocks:
        text += f" Adding it: {item.unlocks}."
    return Part("Idle–overload zones", [text], tables=[Table(
        "Pool-minutes per state", ["Phase", "Pool", *cols, "Not measured",
                                   *(["Flips"] if overload else [])],
        [[r["phase"] or "—", r["pool"], *(fmt.count(r[k]) for k in (
            *keys, "unknown", *(["flips"] if overload else [])))]
         for r in io.iter_rows(named=True)],
        num_cols=tuple(range(2, 3 + len(cols) + (1 if overload else 0))))])
