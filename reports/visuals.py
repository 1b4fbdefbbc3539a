"""Visual appendices 3–8 (Altair → SVG), each with a one-line reading taken from the data.

Hover text: vl-convert's SVG has no tooltips, so marks that should explain themselves carry a
Vega `description` (rendered as `aria-label`), which `_titles` turns into an SVG <title> —
browsers show it on hover; the PDF ignores it. Only small marks sets get it (size).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta
from typing import Any

import altair as alt
import polars as pl

from pipelines.metric_catalog import HEADLINE
from reports import fmt
from reports.charts import (
    ACCENT,
    FONT_PX,
    HEAT_STEPS,
    INK,
    PHASE_COLORS,
    ROW_TITLES,
    SEGMENT_COLORS,
    Chart,
    Post,
    Reader,
    _iso,
    _time_axis,
    heat_grid,
    merge_rects,
    phase_scale,
    segment_scale,
    to_svg,
)
from reports.coverage import Coverage
from reports.sections.common import is_significant

_ARIA = re.compile(r'<(path|rect|line|text|g)\b([^>]*?)\saria-label="([^"]*)"([^>]*?)/>')


def _titles(svg: str) -> str:
    """`<path aria-label="x" …/>` → `<path …><title>x</title></path>` (x stays escaped)."""
    svg = _ARIA.sub(lambda m: f"<{m[1]}{m[2]}{m[4]}><title>{m[3]}</title></{m[1]}>", svg)
    return re.sub(r'\s(role|aria-roledescription)="[^"]*"', "", svg)


def _svg(chart: alt.TopLevelMixin, datasets: dict[str, list[dict[str, Any]]],
         post: tuple[Post, ...] = ()) -> str:
    return to_svg(chart, datasets, post=(_titles, *post))


def _tip() -> alt.Description:
    """A mark's hover title (the SVG <title> _titles makes of it), from its row's `tip`."""
    return alt.Description("tip:N")


def absent(number: int, title: str, why: str) -> Chart:
    """A chart without data: one line saying why (what it needs), never an empty axis."""
    return Chart(number, title, "", f"Not drawn: {why}.")


# ---------------------------------------------------------------------------------------------
# 3. Synchronization map


def sync_map(w: Reader) -> tuple[Chart, list[str]]:
    """Layer health and link alignment per phase (segment 'all'); the layers not measured."""
    title = "Compute / data / serving synchronization map — layer health and link alignment"
    d = w.q("sync_map", """SELECT phase, kind, name, value, note FROM sync_map
                WHERE pilot = ? AND segment = 'all' ORDER BY kind, name, phase""")
    if d.is_empty():
        return absent(3, title, "no sync_map rows in the warehouse"), []
    missing = sorted({r["name"] for r in d.iter_rows(named=True)
                      if r["kind"] == "layer" and r["value"] is None})
    if d["value"].drop_nulls().is_empty():
        why = sorted({(r["note"] or "").removeprefix("not measured: ")
                      for r in d.iter_rows(named=True) if r["kind"] == "layer"} - {""})
        return absent(3, title, "no layer or link could be scored — "
                      + "; ".join(why) if why else "no layer or link could be scored"), missing
    vals = [{"phase": r["phase"], "kind": r["kind"], "name": r["name"].replace("~", " ↔ "),
             "v": r["value"], "label": "not measured" if r["value"] is None
             else f"{r['value']:.0f} %",
             "tip": f"{r['name']} ({r['phase']}): "
                    + ("not measured" if r["value"] is None else f"{r['value']:.1f} %")
                    + (f" — {r['note']}" if r["note"] else "")}
            for r in d.iter_rows(named=True)]
    phases = [p for p in ("baseline", "validation") if p in set(d["phase"])]
    color = alt.Color("phase:N", title="phase", sort=phases, scale=phase_scale(phases))

    def panel(kinds: list[str], ttl: str) -> alt.LayerChart:
        base = alt.Chart(alt.Data(name="sync")).transform_filter(
            alt.FieldOneOfPredicate(field="kind", oneOf=kinds))
        y = alt.Y("name:N", title=None, sort=["overall", "scheduler", "compute", "data",
                                               "serving"], axis=alt.Axis(labelLimit=160))
        bars = base.mark_bar(aria=True, height={"band": 0.8}).encode(
            x=alt.X("v:Q", title="score [%]", scale=alt.Scale(domain=[0, 100])), y=y,
            yOffset=alt.YOffset("phase:N", sort=phases), color=color, description=_tip())
        text = base.mark_text(align="left", dx=3, fontSize=FONT_PX).encode(
            x=alt.X("v0:Q"), y=y, yOffset=alt.YOffset("phase:N", sort=phases),
            text=alt.Text("label:N")).transform_calculate(v0="datum.v == null ? 0 : datum.v")
        return alt.layer(bars, text).properties(width=200, height=22 * len(
            {v["name"] for v in vals if v["kind"] in kinds}), title=ttl)

    chart = alt.hconcat(panel(["layer", "overall"], "Layer health [%]"),
                        panel(["link"], "Link alignment [%] (Spearman ρ → (ρ+1)/2)"),
                        spacing=30)
    ov = {r["phase"]: r["value"] for r in d.iter_rows(named=True) if r["kind"] == "overall"}
    lay = [r for r in d.iter_rows(named=True) if r["kind"] == "layer" and r["value"] is not None
           and r["phase"] == "baseline"]
    reading = []
    if ov:
        reading.append("Overall synchronization " + " → ".join(
            f"{ov[p]:.0f} % ({p})" for p in phases if ov.get(p) is not None))
    if lay:
        weak = min(lay, key=lambda r: r["value"])
        reading.append(f"the weakest baseline layer was {weak['name']} ({weak['value']:.0f} %)")
    if missing:
        reading.append(f"not measured: {', '.join(missing)} layer")
    return Chart(3, title, _svg(chart, {"sync": vals}), "; ".join(reading) + " (measured).",
                 note="Segment: all traffic. Layer health and link definitions: METRICS.md "
                      "(appendix A); values from the sync_map table."), missing


# ---------------------------------------------------------------------------------------------
# 4. Disruption timeline

EVENT_LABELS = {"burst_onset": "burst onset", "adherence_drop": "adherence drop",
                "latency_spike": "latency spike", "queue_peak": "queue peak",
                "timeout_escalation": "timeout escalation", "trough": "trough",
                "recovery": "recovery"}
# event colours: none of them is a phase or segment colour (charts.PHASE_COLORS, SEGMENT_COLORS)
EVENT_COLORS = [ACCENT, "#c0392b", "#a6761d", "#e7298a", "#666600", "#000000", "#66a61e"]
CONTEXT = timedelta(minutes=10)  # minutes drawn either side of the episode
TIMELINE_W = 470  # px: the width of the timeline panels (label lanes are laid out on it)
LABEL_PX = 6.3  # px per character of a FONT_PX label (DejaVu Sans, average)


def label_lanes(xs: list[float], widths: list[float], gap: float = 6.0) -> list[int]:
    """Lane (0, 1, …) of each horizontal label starting at x px, so that labels in one lane
    never overlap: each goes to the first lane whose last label ends before it starts."""
    ends: list[float] = []
    lanes = []
    for x, w in zip(xs, widths, strict=True):
        lane = next((i for i, e in enumerate(ends) if e + gap <= x), len(ends))
        if lane == len(ends):
            ends.append(0.0)
        ends[lane] = x + w
        lanes.append(lane)
    return lanes


def _event_value(event: str, value: float | None, unit: str | None) -> str:
    if event == "recovery":
        return f"after {fmt.long_duration(value)}"
    if unit == "attempts":
        return f"{fmt.count(value)} queued attempts"
    return fmt.value(value, unit or "")


def disruption(w: Reader, cov: Coverage | None = None) -> Chart:
    """The worst pilot-wide disruption episode (most requests missing the SLA): 1-minute SLA
    adherence against the target and P95 latency, with the timeline's events marked."""
    cov = cov or Coverage.read(w)
    title = "Disruption timeline — events of the worst episode"
    if not w.has("disruption_episodes") or not w.has("disruption_timeline"):
        return absent(4, title, "no disruption_episodes / disruption_timeline table in the "
                                "warehouse in this run")
    eps = w.q("disruption_episodes", """SELECT * FROM disruption_episodes
                WHERE pilot = ? AND segment = 'all'
                ORDER BY requests_missed_sla DESC, lowest_sla_adherence, start_ts""")
    if eps.is_empty():
        req = w.q("sla_risk_map", """SELECT coalesce(sum(requests), 0) AS n, min(sla_target)
                    AS target FROM sla_risk_map WHERE pilot = ?""")
        if req.is_empty() or not req["n"][0] or (cov.known and not cov.exact("sla_adherence")):
            need = cov.needs("sla_adherence", exact=True) or "per-request rows"
            return absent(4, title, f"needs {need} (1-minute SLA adherence defines a "
                                    "disruption)")
        return Chart(4, title, "", "No disruption episode: pilot-wide 1-minute SLA adherence "
                     f"never fell below the {fmt.value(req['target'][0], 'share')} target "
                     "(measured, disruption_episodes).")
    e = eps.row(0, named=True)
    ev = w.q("disruption_timeline", """SELECT event, ts, value, unit, pool, detail
                FROM disruption_timeline WHERE pilot = ? AND episode_id = ?
                ORDER BY ts, ord""", e["episode_id"])
    lo = min([e["start_ts"], *ev["ts"].to_list()]) - CONTEXT
    hi = e["recovery_ts"] + CONTEXT
    series = w.q("sla_risk_map", """SELECT window_start AS t,
                sum(requests_met_sla) / nullif(sum(requests), 0) AS adh, sum(requests) AS n
                FROM sla_risk_map WHERE pilot = $1 AND window_start >= $2
                AND window_start <= $3 GROUP BY t ORDER BY t""", lo, hi)
    # the worst pool's 1-minute P95: what the episode's peak P95 and the latency-spike event
    # measure, so the reading's number is on the chart
    lat = w.q("pool_windows", """SELECT window_start AS t, max(latency_p95_s) AS v
                FROM pool_windows WHERE pilot = $1 AND window_start >= $2
                AND window_start <= $3 AND latency_p95_s IS NOT NULL GROUP BY t
                ORDER BY t""", lo, hi) if w.has("pool_windows") else pl.DataFrame()
    target = float(e["sla_target"])
    # events at the same minute share one rule and one label
    marks: dict[datetime, list[str]] = {}
    tips: dict[datetime, list[str]] = {}
    for r in ev.iter_rows(named=True):
        name = EVENT_LABELS.get(r["event"], r["event"])
        marks.setdefault(r["ts"], []).append(name)
        tips.setdefault(r["ts"], []).append(
            f"{name} at {r['ts']:%H:%M}: {_event_value(r['event'], r['value'], r['unit'])}"
            + (f" (pool {r['pool']})" if r["pool"] else ""))
    ev_vals = [{"t": _iso(t), "e": " · ".join(marks[t]), "first": marks[t][0],
                "tip": "; ".join(tips[t])} for t in sorted(marks)]
    # horizontal labels in lanes above the chart, starting at their rule: none overlaps
    span = (hi - lo).total_seconds() or 1.0
    xs = [TIMELINE_W * (t - lo).total_seconds() / span for t in sorted(marks)]
    lanes = label_lanes(xs, [LABEL_PX * len(v["e"]) for v in ev_vals])
    for v, lane in zip(ev_vals, lanes, strict=True):
        v["lane"] = lane
    n_lanes = max(lanes, default=0) + 1
    adh_vals = [{"t": _iso(r["t"]), "adh": None if r["adh"] is None else 100 * r["adh"],
                 "tip": f"{r['t']:%H:%M}: adherence "
                        + ("—" if r["adh"] is None else f"{100 * r['adh']:.1f} %")
                        + f" of {fmt.count(r['n'])} requests"}
                for r in series.iter_rows(named=True)]
    lat_vals = [{"t": _iso(r["t"]), "v": r["v"]} for r in lat.iter_rows(named=True)]
    band = [{"t": _iso(e["start_ts"]), "t2": _iso(e["recovery_ts"])}]
    kinds = [k for k in EVENT_LABELS.values() if k in {v["first"] for v in ev_vals}]
    ev_scale = alt.Scale(domain=kinds, range=[
        EVENT_COLORS[list(EVENT_LABELS.values()).index(k)] for k in kinds])
    color = alt.Color("first:N", title="event", sort=kinds, scale=ev_scale)
    x_top = _time_axis(lo, hi, None)
    x = _time_axis(lo, hi)
    shade = alt.Chart(alt.Data(name="band")).mark_rect(color="#f3d9d5", opacity=0.6).encode(
        x=x_top, x2=alt.X2("t2:T"))
    rules = alt.Chart(alt.Data(name="ev")).mark_rule(strokeDash=[4, 2], aria=True).encode(
        x=x_top, color=color, description=_tip())
    lane_y = alt.Y("lane:O", axis=None, scale=alt.Scale(domain=list(range(n_lanes))))
    labels = alt.layer(
        alt.Chart(alt.Data(name="ev")).mark_text(
            align="left", baseline="middle", dx=2, fontSize=FONT_PX).encode(
            x=x_top, y=lane_y, text=alt.Text("e:N"),
            color=alt.Color("first:N", legend=None, sort=kinds, scale=ev_scale)),
        alt.Chart(alt.Data(name="ev")).mark_tick(thickness=1.5, size=8).encode(
            x=x_top, y=lane_y,
            color=alt.Color("first:N", legend=None, sort=kinds, scale=ev_scale)),
    ).properties(width=TIMELINE_W, height=12 * n_lanes, title="Events")
    tgt = alt.Chart(alt.Data(name="tgt")).mark_rule(color="#333", strokeDash=[2, 2]).encode(
        y=alt.Y("y:Q"))
    y_adh = alt.Y("adh:Q", title="SLA adherence [%]", scale=alt.Scale(domain=[0, 100]))
    line = alt.Chart(alt.Data(name="adh")).mark_line(color=INK, strokeWidth=1.2).encode(
        x=x_top, y=y_adh)
    pts = alt.Chart(alt.Data(name="adh")).mark_point(size=10, filled=True, color=INK,
                                                      aria=True).encode(
        x=x_top, y=y_adh, description=_tip())
    top = alt.layer(shade, tgt, line, pts, rules).properties(
        width=TIMELINE_W, height=170, title="Pilot-wide 1-minute SLA adherence (dashed: "
                                            f"target {100 * target:.0f} %; shaded: the episode)")
    bottom_layers = [alt.Chart(alt.Data(name="band")).mark_rect(
        color="#f3d9d5", opacity=0.6).encode(x=x, x2=alt.X2("t2:T")),
        alt.Chart(alt.Data(name="ev")).mark_rule(strokeDash=[4, 2]).encode(
            x=x, color=alt.Color("first:N", legend=None, sort=kinds, scale=ev_scale))]
    if lat_vals:
        bottom_layers.append(alt.Chart(alt.Data(name="lat")).mark_line(
            color=INK, strokeWidth=1.2).encode(x=x, y=alt.Y(
                "v:Q", title="P95 latency [s]")))
    bottom = alt.layer(*bottom_layers).properties(
        width=TIMELINE_W, height=90, title="1-minute P95 end-to-end latency of the worst pool "
                                           "in each minute")
    chart = alt.vconcat(labels, top, bottom, spacing=6)
    svg = _svg(chart, {"ev": ev_vals, "adh": adh_vals, "lat": lat_vals, "band": band,
                       "tgt": [{"y": 100 * target}]})
    by_phase = eps.group_by("phase").len().sort("phase")
    others = ", ".join(f"{r['len']} in {r['phase'] or 'no phase'}"
                       for r in by_phase.iter_rows(named=True))
    reading = (f"The worst of {eps.height} disruption episodes ({others}) began "
               f"{fmt.ts(e['start_ts'])} in the {e['phase'] or '—'} phase and lasted "
               f"{fmt.long_duration(e['duration_s'])}: adherence fell to "
               f"{fmt.value(e['lowest_sla_adherence'], 'share')} (target "
               f"{fmt.value(target, 'share')}), the worst pool's 1-minute P95 peaked at "
               f"{fmt.value(e['peak_p95_s'], 's')}"
               f", timeouts at {fmt.value(e['max_timeout_rate'], 'share')} of attempts, and "
               f"{fmt.count(e['requests_missed_sla'])} of {fmt.count(e['requests'])} requests "
               f"missed the SLA")
    if e["burst_onset_ts"] is not None:
        lead = (e["start_ts"] - e["burst_onset_ts"]).total_seconds()
        pool = str(e["burst_pool"])
        where = pool if pool.lower().startswith("pool") else f"pool {pool}"
        reading += (f"; a burst in {where} began "
                    + (f"{fmt.long_duration(lead)} before" if lead > 0 else "during") + " it")
    reading += ("; it recovered "
                + (f"{fmt.long_duration(e['time_to_recover_s'])} after its worst minute"
                   if e["recovered"] else "— not before the data ended")
                + " (measured, disruption_episodes).")
    return Chart(4, title, svg, reading,
                 note="An episode starts when pilot-wide 1-minute SLA adherence falls below "
                      "the target and ends once it has stayed at or above it for "
                      f"{fmt.long_duration(_recover_s(e))} (METRICS.md). Worst = most "
                      "requests missing the SLA. Events: disruption_timeline (peak minutes; "
                      "queue peak from " + (e["queue_source"] or "—") + ").")


def _recover_s(e: dict[str, Any]) -> float | None:
    try:
        return float(json.loads(e["thresholds_json"])["disruption_recover_s"])
    except (TypeError, ValueError, KeyError):
        return None


# ---------------------------------------------------------------------------------------------
# 5. Hidden idle topology

def hidden_idle_topology(w: Reader, cov: Coverage | None = None) -> Chart:
    """V1's hidden-loss cells (charts.heat_grid: the same rows, bins and values), regrouped by
    pool, with each pool's mean beside them."""
    cov = cov or Coverage.read(w)
    grid = heat_grid(w)
    title = "Hidden idle topology — hidden loss per {} and window, by pool"
    if grid is None or grid.cells["hcl_pp"].drop_nulls().is_empty():
        return absent(5, title.format("GPU"), "needs " + (
            cov.needs("hidden_capacity_loss") or "gpu_util and sm_active series")
            + " (both nominal and effective utilization per GPU)")
    title = title.format(grid.level)
    cells = grid.cells.drop_nulls("hcl_pp")
    pools = w.q("hidden_idle_map", """SELECT coalesce(pool, '?') AS pool, avg(hcl_pp) AS np,
                count(DISTINCT (node, gpu)) AS gpus
                FROM hidden_idle_map WHERE pilot = ? AND hcl_pp IS NOT NULL
                GROUP BY ALL ORDER BY np DESC, pool""")
    lo, hi = cells["t"].min(), cells["t2"].max()
    vmax = max(1.0, float(cells["hcl_pp"].max() or 0))
    pool_order = pools["pool"].to_list()
    rank = {p: i for i, p in enumerate(pool_order)}  # rows grouped by pool, worst pool first
    labels = [lab for _, lab in sorted({(rank.get(p, 0), lab) for p, lab in zip(
        cells["pool"].to_list(), cells["row"].to_list(), strict=True)})]
    row_h = 11  # a 9-px label per row: ≥ 7 pt once the chart is scaled to the A4 text width
    heat_vals = [{"row": r["row"], "t": _iso(r["t"]), "t2": _iso(r["t2"]), "np": r["hcl_pp"]}
                 for r in cells.iter_rows(named=True)]
    heat = alt.Chart(alt.Data(name="topo")).mark_rect().encode(
        x=_time_axis(lo, hi), x2=alt.X2("t2:T"),
        y=alt.Y("row:N", title=ROW_TITLES[grid.level], sort=labels,
                axis=alt.Axis(labelFontSize=FONT_PX, labelLimit=170)),
        color=alt.Color("np:Q", title="pp", scale=alt.Scale(
            type="quantize", domain=[0, vmax],
            scheme=alt.SchemeParams(name="oranges", count=HEAT_STEPS))),
    ).properties(width=220, height=row_h * len(labels))
    bar_vals = [{"pool": r["pool"], "np": r["np"], "tip": f"{r['pool']}: {r['np']:.1f} pp "
                 f"hidden loss on average over {r['gpus']} GPUs"}
                for r in pools.iter_rows(named=True)]
    bars = alt.Chart(alt.Data(name="pools")).mark_bar(color=ACCENT, aria=True).encode(
        x=alt.X("np:Q", title="mean hidden loss [pp]"),
        y=alt.Y("pool:N", sort=pool_order, title="pool",
                axis=alt.Axis(labelLimit=90)), description=_tip(),
    ).properties(width=100, height=max(40, 16 * len(pool_order)), title="Per pool")
    chart = alt.hconcat(heat, bars, spacing=16).properties(
        title=f"{grid.level} × window: nominal − effective utilization (negative shown as 0)")
    worst = pools.row(0, named=True)
    best = pools.row(-1, named=True)
    cell = cells.sort(["hcl_pp", "t"], descending=[True, False]).row(0, named=True)
    reading = (f"Pool {worst['pool']} carried the most hidden loss "
               f"({fmt.value(worst['np'], 'pp')} on average over {worst['gpus']} GPUs), pool "
               f"{best['pool']} the least ({fmt.value(best['np'], 'pp')}); the worst cell was "
               f"{grid.level} row {cell['row']} in the {grid.bin_minutes}-minute bin starting "
               f"{fmt.ts(cell['t'])} ({fmt.value(cell['hcl_pp'], 'pp')}) (measured).")
    svg = _svg(chart, {"topo": heat_vals, "pools": bar_vals}, post=(merge_rects,))
    return Chart(5, title, svg, reading,
                 note=f"The cells of visual 1's hidden-loss panel (one row per {grid.level}, "
                      f"{grid.bin_minutes}-minute columns, mean of the 1-minute cells of "
                      f"hidden_idle_map), grouped by pool, coloured in {HEAT_STEPS} equal "
                      f"bands.")


# ---------------------------------------------------------------------------------------------
# 6. Energy–latency view


def energy_latency(w: Reader, cov: Coverage | None = None) -> Chart:
    cov = cov or Coverage.read(w)
    title = "Energy–latency view — cluster GPU power and P95 latency per minute"
    d = w.q("energy_latency_windows", """SELECT window_start AS t, phase, power_w,
                p95_latency_s FROM energy_latency_windows WHERE pilot = ? ORDER BY t""")
    if d.is_empty() or d["power_w"].drop_nulls().is_empty():
        return absent(6, title, "needs " + (cov.needs("gpu_power") or "a power_w series in "
                                            "the GPU samples"))
    if d["p95_latency_s"].drop_nulls().is_empty():
        return absent(6, title, "needs " + (cov.needs("latency_quantiles") or "per-request "
                                            "rows") + " for the P95 latency side (GPU power is "
                      "in section 5)")
    lo, hi = d["t"].min(), d["t"].max()
    vals = [{"t": _iso(r["t"]), "phase": r["phase"] or "outside phases",
             "kw": None if r["power_w"] is None else r["power_w"] / 1000,
             "p95": r["p95_latency_s"],
             "tip": f"{fmt.ts(r['t'])}: "
                    + (f"{r['power_w'] / 1000:.1f} kW" if r["power_w"] is not None else "—")
                    + ", P95 " + fmt.value(r["p95_latency_s"], "s")}
            for r in d.iter_rows(named=True)]
    x = _time_axis(lo, hi)
    phases = [p for p in PHASE_COLORS if p in {v["phase"] for v in vals}]
    color = alt.Color("phase:N", sort=phases, title="phase", scale=phase_scale(phases))
    # lines coloured by phase, like every phase in every chart
    power = alt.Chart(alt.Data(name="el")).mark_line(strokeWidth=1).encode(
        x=_time_axis(lo, hi, None), y=alt.Y("kw:Q", title="GPU power [kW]"), color=color
    ).properties(width=270, height=90)
    lat = alt.Chart(alt.Data(name="el")).mark_line(strokeWidth=1).encode(
        x=x, y=alt.Y("p95:Q", title="P95 latency [s]"), color=color).properties(
        width=270, height=90)
    scatter = alt.Chart(alt.Data(name="el")).mark_circle(size=14, opacity=0.7, aria=True).encode(
        x=alt.X("kw:Q", title="GPU power [kW]", scale=alt.Scale(zero=False)),
        y=alt.Y("p95:Q", title="P95 latency [s]"), color=color, description=_tip(),
    ).properties(width=160, height=200, title="Per minute: power vs P95")
    chart = alt.hconcat(alt.vconcat(power, lat, spacing=6), scatter, spacing=20)
    corr = w.q("energy_latency_corr", """SELECT phase, windows, spearman_rho, rho_lo, rho_hi,
                y_cv FROM energy_latency_corr WHERE pilot = ? ORDER BY phase = 'all' DESC,
                phase""")
    if corr.is_empty():
        reading = ("The correlation of power and P95 latency is not computed in this run "
                   "(no energy_latency_corr table).")
    else:
        bits = []
        for r in corr.iter_rows(named=True):
            if r["spearman_rho"] is None:
                bits.append(f"{r['phase']}: not defined ({r['windows']} windows)")
                continue
            ci = (f" [{r['rho_lo']:.2f}, {r['rho_hi']:.2f}]" if r["rho_lo"] is not None
                  else "")
            bits.append(f"{r['phase']} ρ = {r['spearman_rho']:.2f}{ci} over {r['windows']} "
                        f"minutes")
        reading = ("Spearman correlation of per-minute GPU power with P95 latency: "
                   + "; ".join(bits) + " (measured; 95 % moving-block bootstrap intervals).")
    return Chart(6, title, _svg(chart, {"el": vals}), reading,
                 note="Power: sum over GPUs of each GPU's time-weighted mean power_w in the "
                      "minute. P95: pilot-wide end-to-end latency of attempts that completed "
                      "ok, by arrival minute (energy_latency_windows).")


# ---------------------------------------------------------------------------------------------
# 7. Before / after coherence graph

SCALE = {"share": (100.0, "%"), "pp": (1.0, "pp"), "s": (1.0, "s"), "ratio": (1.0, "×"),
         "J": (1.0, "J"), "req/s": (1.0, "req/s")}


def _phase_pairs(vals: list[dict[str, Any]], segs: list[str], order: list[str],
                 columns: int, width: int = 106, height: int = 70,
                 did: bool = False) -> alt.FacetChart:
    """Small multiples, one per metric: baseline → validation per segment, with intervals.

    x is numeric (phase 0/1 plus a small offset per segment) so a segment's line, interval and
    points share one x: the line runs through its points. `vals` rows: m (panel), seg, phase,
    v, lo, hi, tip; with did=True also rows {m, kind: "did", label, sig} drawn as a line of
    text at the panel top.
    """
    step = 0.14
    for v in vals:
        if v.get("kind") == "did":
            continue
        i = segs.index(v["seg"]) if v["seg"] in segs else 0
        v["x"] = (v["phase"] == "validation") + (i - (len(segs) - 1) / 2) * step
    color = alt.Color("seg:N", title="segment", sort=segs, scale=segment_scale(segs))
    x = alt.X("x:Q", title=None, scale=alt.Scale(domain=[-0.45, 1.45], nice=False),
              axis=alt.Axis(values=[0, 1], labelFontSize=FONT_PX, grid=False,
                            labelExpr="datum.value == 0 ? 'baseline' : 'validation'"))
    base = alt.Chart().transform_filter("datum.kind != 'did'")
    y = alt.Y("v:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(tickCount=3))
    line = base.mark_line(strokeWidth=1).encode(x=x, y=y, color=color, detail=alt.Detail("seg:N"))
    err = base.mark_errorbar(ticks=True).encode(x=x, y=alt.Y("lo:Q", title=None), y2=alt.Y2("hi:Q"),
                                                color=color)
    pts = base.mark_point(filled=True, size=28, opacity=1, aria=True).encode(
        x=x, y=alt.Y("v:Q"), color=color, description=_tip())
    layers: list[alt.Chart] = [line, err, pts]
    if did:  # an interval that excludes zero in bold black, else plain grey
        for test, weight, ink in (("datum.sig", "bold", "#000"), ("!datum.sig", "normal",
                                                                   "#666")):
            # a line of its own between the panel title and the plot: never over the data
            layers.append(alt.Chart().transform_filter(
                f"datum.kind == 'did' && {test}").mark_text(
                align="left", baseline="bottom", fontSize=FONT_PX, dy=-4, fontWeight=weight,
                color=ink, limit=width + 8).encode(x=alt.XValue(0), y=alt.YValue(0),
                                                    text=alt.Text("label:N")))
    return alt.layer(*layers, data=alt.Data(name="pairs")).properties(
        width=width, height=height).facet(
        facet=alt.Facet("m:N", sort=order, title=None,
                        header=alt.Header(labelFontSize=FONT_PX, labelLimit=width + 30,
                                          labelPadding=18 if did else 4)),
        columns=columns, spacing=12).resolve_scale(y="independent")



def coherence(ci: dict[tuple[str, str], dict[str, Any]], control: bool) -> Chart:
    title = "Before / after coherence graph — headline metrics with 95 % intervals"
    if not ci:
        return absent(7, title, "needs confidence intervals (metrics_ci), which this run "
                                "did not compute")
    segs = ("treatment", "control") if control else ("all",)
    vals = []
    order = []
    for m in HEADLINE:
        f, u = SCALE.get(m.unit, (1.0, m.unit))
        facet = f"{m.label} [{u}]"
        for s in segs:
            r = ci.get((s, m.name))
            if r is None:
                continue
            for ph in ("baseline", "validation"):
                v = r.get(ph)
                if v is None:
                    continue
                lo, hi = r.get(f"{ph}_lo"), r.get(f"{ph}_hi")
                vals.append({"m": facet, "seg": s, "phase": ph, "v": v * f,
                             "lo": None if lo is None else lo * f,
                             "hi": None if hi is None else hi * f,
                             "tip": f"{m.label}, {s}, {ph}: {fmt.value(v, m.unit)} "
                                    f"{fmt.interval(lo, hi, m.unit)}"})
            if facet not in order:
                order.append(facet)
    if not vals:
        return absent(7, title, "every headline metric lacks a value in metrics_ci")
    chart = _phase_pairs(vals, list(segs), order, columns=4)
    seg = "treatment" if control else "all"
    key = "did_significant" if control else "significant"
    # the same rule as the text: significant only where the PRINTED interval excludes zero
    sig = [m.label for m in HEADLINE if is_significant(ci.get((seg, m.name)), m, key)]
    tested = [m for m in HEADLINE if (ci.get((seg, m.name)) or {}).get(key) is not None]
    reading = (f"{len(sig)} of {len(tested)} headline metrics with intervals changed "
               + ("beyond the control (DiD interval excludes zero)" if control else
                  "significantly (interval of the change excludes zero)")
               + (f": {', '.join(sig)}" if sig else "") + " (measured, metrics_ci).")
    return Chart(7, title, _svg(chart, {"pairs": vals}), reading,
                 note="Points: exact values; bars: 95 % block-bootstrap intervals "
                      "(histogram-approximate for quantiles); each panel has its own scale.")


def before_after_chart(rows: list[dict[str, Any]], columns: int = 2) -> str:
    """Section 0's compact before/after chart: one small panel per key metric, baseline →
    validation per segment with 95 % intervals, and the difference-in-differences interval
    written at the top of the panel (bold when it excludes zero). Returns SVG, or "" when no
    row has a value. The caller (the section 0 model) formats the numbers; this only draws.

    rows: one dict per metric × segment, values already in the unit the panel names:
      metric: str            panel title with its unit, e.g. "P95 latency [s]"
      segment: str           "treatment" | "control" | "all" (colours: charts.SEGMENT_COLORS)
      baseline, validation: float | None
      baseline_lo, baseline_hi, validation_lo, validation_hi: float | None (optional)
      did_text: str          optional, on one row of the metric, e.g. "DiD −7.3 s
                             [−11.8, +0.2]" (about 24 characters fit per 140 px of panel
                             width — ~45 at the default two columns; longer is cut with …)
      did_significant: bool  optional, with did_text: the interval excludes zero
    Panels follow the order of first appearance; segments the order treatment, control, all.
    """
    vals: list[dict[str, Any]] = []
    order: list[str] = []
    for r in rows:
        m = str(r["metric"])
        for ph in ("baseline", "validation"):
            v = r.get(ph)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            vals.append({"m": m, "seg": r["segment"], "phase": ph, "v": v,
                         "lo": r.get(f"{ph}_lo"), "hi": r.get(f"{ph}_hi"),
                         "tip": f"{m}, {r['segment']}, {ph}: {v:.4g}"})
            if m not in order:
                order.append(m)
    if not vals:
        return ""
    vals += [{"kind": "did", "m": str(r["metric"]), "label": r["did_text"],
              "sig": bool(r.get("did_significant"))}
             for r in rows if r.get("did_text") and str(r["metric"]) in order]
    segs = [s for s in SEGMENT_COLORS if s in {v["seg"] for v in vals if "seg" in v}]
    cols = min(columns, len(order))
    # panels share ~600 px: two per row leave room for a whole DiD interval on one line
    chart = _phase_pairs(vals, segs, order, columns=cols, width=max(140, 600 // cols - 20),
                         height=80, did=True)
    return _svg(chart, {"pairs": vals})


# ---------------------------------------------------------------------------------------------
# 8. Operational topology diagram


def topology_diagram(w: Reader, cov: Coverage | None = None) -> Chart:
    cov = cov or Coverage.read(w)
    title = "Operational topology — pools, GPUs and latency cascade edges"
    gp = w.q("hidden_idle_map", """SELECT coalesce(pool, '?') AS pool,
                count(DISTINCT (node, gpu)) FILTER (WHERE gpu IS NOT NULL) AS gpus,
                count(DISTINCT node) AS nodes
                FROM hidden_idle_map WHERE pilot = ? GROUP BY ALL ORDER BY pool""")
    if gp.is_empty():
        gp = w.q("requests", """SELECT pool,
                    count(DISTINCT (node, gpu)) FILTER (WHERE gpu IS NOT NULL) AS gpus,
                    count(DISTINCT node) AS nodes FROM requests WHERE pilot = ?
                    GROUP BY ALL ORDER BY pool""")
    if gp.is_empty():
        return absent(8, title, "needs pools with GPUs (GPU samples or per-request rows)")
    pools = gp["pool"].to_list()
    n = len(pools)
    pos = {p: (math.cos(2 * math.pi * i / n - math.pi / 2) if n > 1 else 0.0,
               math.sin(2 * math.pi * i / n - math.pi / 2) if n > 1 else 0.0)
           for i, p in enumerate(pools)}
    nodes = [{"pool": r["pool"], "x": pos[r["pool"]][0], "y": -pos[r["pool"]][1],
              "gpus": r["gpus"] or 1, "label": f"{r['pool']} ({_gpus(r['gpus'])})",
              "tip": f"{r['pool']}: {_gpus(r['gpus'])} on {r['nodes']} nodes",
              # labels sit outside the ring, on the side away from the centre: they never
              # cross an edge (edges run inside the ring) or another label
              "lx": 1.3 * pos[r["pool"]][0], "ly": -1.3 * pos[r["pool"]][1],
              "side": _side(*pos[r["pool"]]) if n > 1 else "top"}
             for r in gp.iter_rows(named=True)]
    edges_df = w.q("latency_cascade_paths", """SELECT from_pool, to_pool, waves, episodes,
                share, mean_lag_s FROM latency_cascade_paths WHERE pilot = ?
                AND phase = 'baseline' AND waves > 0 ORDER BY share DESC, from_pool, to_pool""")
    edges, heads = [], []
    for r in edges_df.iter_rows(named=True):
        if r["from_pool"] not in pos or r["to_pool"] not in pos:
            continue
        (x1, y1), (x2, y2) = pos[r["from_pool"]], pos[r["to_pool"]]
        y1, y2 = -y1, -y2
        # a → b and b → a would share one line: shift each to its right-hand side
        d = math.hypot(x2 - x1, y2 - y1) or 1.0
        ox, oy = 0.05 * (y2 - y1) / d, -0.05 * (x2 - x1) / d
        x1, y1, x2, y2 = x1 + ox, y1 + oy, x2 + ox, y2 + oy
        tip = (f"{r['from_pool']} → {r['to_pool']}: {r['waves']} of {r['episodes']} bursts "
               f"followed by a wave ({fmt.value(r['share'], 'share')}), mean lag "
               f"{fmt.value(r['mean_lag_s'], 's')}")
        # stop short of the node circles; the arrow head sits at 80 % of the way
        edges.append({"x": x1 + 0.12 * (x2 - x1), "y": y1 + 0.12 * (y2 - y1),
                      "x2": x1 + 0.85 * (x2 - x1), "y2": y1 + 0.85 * (y2 - y1),
                      "share": r["share"], "tip": tip})
        ang = math.degrees(math.atan2(x2 - x1, y2 - y1))  # vega angle: clockwise from up
        heads.append({"x": x1 + 0.85 * (x2 - x1), "y": y1 + 0.85 * (y2 - y1), "a": ang,
                      "share": r["share"], "tip": tip})
    # wider than high: the labels left and right of the ring stay inside the drawing
    sx, sy = alt.Scale(domain=[-2.1, 2.1]), alt.Scale(domain=[-1.5, 1.5])
    layers = []
    if edges:
        layers.append(alt.Chart(alt.Data(name="edges")).mark_rule(aria=True).encode(
            x=alt.X("x:Q", scale=sx, axis=None), y=alt.Y("y:Q", scale=sy, axis=None),
            x2=alt.X2("x2:Q"), y2=alt.Y2("y2:Q"),
            strokeWidth=alt.StrokeWidth("share:Q", scale=alt.Scale(domain=[0, 1],
                                                                   range=[0.5, 4]),
                                        title="wave share",
                                        legend=alt.Legend(orient="bottom")),
            color=alt.ColorValue("#c0392b"), opacity=alt.OpacityValue(0.6), description=_tip()))
        layers.append(alt.Chart(alt.Data(name="heads")).mark_point(
            shape="triangle-up", filled=True, size=60, color="#c0392b").encode(
            x=alt.X("x:Q", scale=sx, axis=None), y=alt.Y("y:Q", scale=sy, axis=None),
            angle=alt.Angle("a:Q", scale=None)))
    layers.append(alt.Chart(alt.Data(name="nodes")).mark_circle(
        color="#5f6b73", opacity=0.85, aria=True).encode(
        x=alt.X("x:Q", scale=sx, axis=None), y=alt.Y("y:Q", scale=sy, axis=None),
        size=alt.Size("gpus:Q", title="GPUs", scale=alt.Scale(range=[200, 1400]),
                      legend=alt.Legend(orient="bottom")),
        description=_tip()))
    for side, align, baseline in (("right", "left", "middle"), ("left", "right", "middle"),
                                  ("top", "center", "bottom"), ("bottom", "center", "top")):
        layers.append(alt.Chart(alt.Data(name="nodes")).transform_filter(
            f"datum.side == '{side}'").mark_text(
            align=align, baseline=baseline, fontSize=FONT_PX, fontWeight="bold",
            limit=170).encode(
            x=alt.X("lx:Q", scale=sx, axis=None), y=alt.Y("ly:Q", scale=sy, axis=None),
            text=alt.Text("label:N")))
    chart = alt.layer(*layers).properties(width=460, height=300,
                                          view={"stroke": None}).resolve_scale(
        size="independent")
    total = _gpus(int(gp["gpus"].sum()))
    if not w.has("latency_cascade_paths"):
        reading = (f"{n} pools with {total}; cascade edges are not measured in this run "
                   f"(no latency_cascade_paths table).")
    elif not edges and not cov.exact("latency_waves", "burst_episodes"):
        reading = (f"{n} pools with {total}; cascade edges are "
                   f"{cov.not_tested('burst_episodes', 'latency_waves', exact=True)}.")
    elif not edges:
        reading = (f"{n} pools with {total}; no baseline burst was followed by a latency "
                   f"wave in another pool (measured).")
    else:
        top = edges_df.row(0, named=True)
        reading = (f"{n} pools with {total} and {len(edges)} baseline cascade edges; the "
                   f"strongest ran {top['from_pool']} → {top['to_pool']} "
                   f"({top['waves']} of {top['episodes']} bursts followed by a wave, mean lag "
                   f"{fmt.value(top['mean_lag_s'], 's')}) (measured).")
    return Chart(8, title, _svg(chart, {"nodes": nodes, "edges": edges, "heads": heads}),
                 reading, note="Circle area: GPUs per pool; arrows: baseline latency cascade "
                               "edges (latency_cascade_paths), width by the share of the "
                               "source pool's bursts that were followed by a wave.")


def build_more_charts(w: Reader, ci: dict, control: bool,
                      cov: Coverage) -> tuple[list[Chart], list[str]]:
    """Visual appendices 3–8 and the synchronization layers that are not measured."""
    v3, missing = sync_map(w)
    return [v3, disruption(w, cov), hidden_idle_topology(w, cov), energy_latency(w, cov),
            coherence(ci, control), topology_diagram(w, cov)], missing



def _side(x: float, y: float) -> str:
    """Where a ring node's label goes: away from the centre (x, y on the unit circle)."""
    if abs(x) < 0.35:
        return "top" if y < 0 else "bottom"  # y < 0 is drawn at the top (y is negated)
    return "right" if x > 0 else "left"


def _gpus(n: int | None) -> str:
    # per-pool series (aggregates, some Prometheus exports) name no GPU: say so, not "0 GPUs"
    return f"{n} GPUs" if n else "GPUs not identified"
