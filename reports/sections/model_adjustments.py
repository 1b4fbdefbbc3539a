"""Section 6: model-based operational adjustments (the what-if tables, all modeled)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import polars as pl

from pipelines.metric_catalog import BY_NAME, Metric
from reports import fmt
from reports.sections.common import (
    Reader,
    not_in_run,
)
from reports.types import Part, Table

WHATIF_METRICS = ("p95_latency_s", "queue_wait_p95_s", "sla_adherence", "timeout_drop_rate",
                  "goodput_rps", "effective_util")


def _overall(d: pl.DataFrame) -> pl.DataFrame:
    return d.filter(pl.col("breakdown") == "overall") if "breakdown" in d.columns else d


TRACE_BASIS = "arrival trace + declared service model"
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
    status = whatif_status(w)
    if status and status.get("status") == "not_modeled":
        reason = (status.get("reason") or "no reason recorded").removeprefix("not modeled: ")
        return [Part("", [f"Not modeled: {reason}."])]
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
    if not window and status and status.get("window_start") and status.get("window_end"):
        window = (f" The replay covers {fmt.ts(status['window_start'])} to "
                  f"{fmt.ts(status['window_end'])}.")
    if status and status.get("basis") == TRACE_BASIS:
        model = status.get("service_model") or "service model not described"
        how = (f"Each policy was replayed by the discrete-event simulator, modeled from an "
               f"arrival trace and a declared service model ({model}): the service times "
               f"are the declared model's, not observed ones")
    else:
        how = ("Each policy was replayed by the discrete-event simulator on this pilot's "
               "arrivals and observed service times")
    parts = [Part("", [how + "; the change is relative to the replay of today's policy (same "
                       "seeds). Every figure in this section is modeled, not measured."
                       + window], tables=[Table(
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




def whatif_status(w: Reader) -> dict[str, Any] | None:
    """The pilot's whatif_status row (modeled or not, on what basis), None without it."""
    d = w.q("whatif_status", "SELECT * FROM whatif_status WHERE pilot = ?")
    return None if d.is_empty() else d.row(0, named=True)
