"""Section 6: model-based operational adjustments (the what-if tables, all modeled)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import polars as pl

from pipelines.metric_catalog import BY_NAME, Metric
from reports import fmt
from reports.evidence import policy_name
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


def _last_phase(res: pl.DataFrame) -> pl.DataFrame:
    """The replay the policies are compared on: the validation arrivals when replayed."""
    if "phase" not in res.columns or res.is_empty():
        return res
    phases = res["phase"].unique().to_list()
    return res.filter(pl.col("phase") == ("validation" if "validation" in phases
                                          else phases[0]))


def _seed_range(r: dict[str, Any], unit: str, change: bool = False) -> str:
    lo, hi = r.get("modeled_min"), r.get("modeled_max")
    if lo is None or hi is None:
        return "—"
    f = fmt.change if change else fmt.value
    return f"{f(lo, unit)} to {f(hi, unit)}"


def _error_tables(err: pl.DataFrame) -> list[Part]:
    """Calibration, predicted vs measured effect (DiD), validation levels: one table each."""
    parts: list[Part] = []
    if err.is_empty() or not {"comparison", "segment", "metric", "unit", "measured",
                               "modeled"} <= set(err.columns):
        return parts
    seeds = err["seeds"].max() if "seeds" in err.columns else None
    seeds_txt = f"{seeds} seeds" if seeds else "the seeds"

    def rows_of(comp: str, segments: tuple[str, ...]) -> list[dict[str, Any]]:
        d = err.filter((pl.col("comparison") == comp) & pl.col("segment").is_in(segments))
        order = {m: i for i, m in enumerate(ERROR_ORDER)}
        return sorted(d.iter_rows(named=True),
                      key=lambda r: (segments.index(r["segment"]), order.get(r["metric"], 99)))

    def levels(comp: str, heading: str, text: str, caption: str) -> None:
        """Modeled against measured levels (calibration, validation levels), one table."""
        found = rows_of(comp, ("all", "treatment", "control"))
        if not found:
            return
        rows = [[str(r["segment"]), _label(r["metric"]), fmt.value(r["measured"], r["unit"]),
                 fmt.value(r["modeled"], r["unit"]), _seed_range(r, r["unit"]),
                 fmt.rel(r.get("error_rel"))] for r in found]
        parts.append(Part(heading, [text], tables=[Table(
            f"{caption} (whatif_model_error, comparison {comp})",
            ["Segment", "Metric", "Measured", "Modeled (mean)",
             f"Modeled, min to max over {seeds_txt}", "Error"], rows,
            basis="measured, modeled", num_cols=(2, 3, 4, 5))]))

    levels("calibration", "Calibration: today's policy on the whole baseline",
           "The baseline phase, whole, replayed under today's policy (modeled) and measured "
           "by the same SQL as the telemetry, against the measured baseline levels. The goal "
           "is an error within 5 %.", "Calibration")
    eff = rows_of("effect", ("treatment",))
    mdid = {r["metric"]: r for r in rows_of("modeled_did", ("treatment",))}
    if eff:
        inside = sum(1 for r in eff if r.get("inside"))
        judged = sum(1 for r in eff if r.get("inside") is not None)
        signs = sum(1 for r in eff if r.get("same_sign"))
        m_inside = sum(1 for r in mdid.values() if r.get("inside"))
        m_judged = sum(1 for r in mdid.values() if r.get("inside") is not None)

        def verdict(r: dict[str, Any] | None) -> str:
            if r is None or r.get("inside") is None:
                return "—"
            return "inside" if r["inside"] else "outside"

        rows = []
        for r in eff:
            u = r["unit"]
            m = mdid.get(r["metric"])
            rows.append([_label(r["metric"]), fmt.change(r["measured"], u),
                         fmt.change_interval(r.get("measured_lo"), r.get("measured_hi"), u)
                         or "—", fmt.change(r["modeled"], u), _seed_range(r, u, change=True),
                         verdict(r), "yes" if r.get("same_sign") else "no",
                         "—" if m is None else fmt.change(m["modeled"], u), verdict(m)])
        text = [
            "The validation phase's own arrivals, whole (after a warm-up of the arrivals just "
            "before it), replayed under today's policy and under the declared adjustments with "
            "the same random draws per seed (common random numbers). The predicted effect is "
            "(adjusted − today) on the treatment segment minus the same on the control "
            "segment (modeled); the measured one is the difference-in-differences with its "
            f"95 % block-bootstrap interval (metrics_ci). {inside} of {judged} predicted "
            f"effects fall inside the measured interval; {signs} of {len(eff)} have the "
            "measured sign."]
        if mdid:
            text.append(
                "“Modeled DiD” builds the measured estimator from replayed levels instead: "
                "(adjusted validation − today's baseline) on treatment minus the same on "
                f"control; {m_inside} of {m_judged} fall inside the measured interval. Where "
                "the two predictions differ, the phases' workloads changed besides the policy "
                "and the measured DiD's parallel-trends assumption does not hold: the "
                "difference is the model's estimate of that bias (modeled).")
        parts.append(Part("Predicted effect against the measured difference-in-differences",
                          text, tables=[Table(
                "Predicted vs measured effect (whatif_model_error, comparisons effect and "
                "modeled_did)",
                ["Metric", "Measured DiD", "95 % interval", "Predicted effect (mean)",
                 f"Predicted, min to max over {seeds_txt}", "Verdict", "Same sign",
                 "Modeled DiD", "Verdict"], rows,
                basis="measured, modeled", num_cols=(1, 2, 3, 4, 7),
                nowrap_cols=(5, 6, 8))]))
    levels("validation_level", "Predicted against measured validation levels",
           "The validation arrivals replayed under the policy each segment ran (the declared "
           "adjustments on the treatment pools, today's elsewhere; modeled), against the "
           "measured validation levels.", "Validation levels")
    return parts


ERROR_ORDER = ("p50_latency_s", "p95_latency_s", "p99_latency_s", "queue_wait_p50_s",
               "queue_wait_p95_s", "timeout_drop_rate", "sla_adherence", "goodput_rps",
               "retry_amplification")
SIM_DEFAULTS = "modeled (simulator defaults)"


def _label(metric: str) -> str:
    m = BY_NAME.get(metric)
    return m.label if m is not None else metric


def whatif(w: Reader) -> list[Part]:
    """Calibration, predicted vs measured effect, validation levels, and the predicted change
    per policy (every figure modeled except the measured columns)."""
    status = whatif_status(w)
    if status and status.get("status") == "not_modeled":
        reason = (status.get("reason") or "no reason recorded").removeprefix("not modeled: ")
        return [Part("", [f"Not modeled: {reason}."])]
    res = _overall(w.q("whatif_results", "SELECT * FROM whatif_results WHERE pilot = ? "
                                         "ORDER BY ALL"))
    if res.is_empty() or not {"policy", "metric"} <= set(res.columns):
        return [not_in_run("no what-if (modeled) results in the warehouse (whatif_results)")]
    res = _last_phase(res)
    if "segment" in res.columns:
        res = res.filter(pl.col("segment") == "all") if (res["segment"] == "all").any() else res
    by = {(r["policy"], r["metric"]): r for r in res.iter_rows(named=True)}
    metrics = [BY_NAME[n] for n in WHATIF_METRICS if any(k[1] == n for k in by)]
    rows = []
    for pol in res["policy"].unique(maintain_order=True).to_list():
        label = next((r.get("policies") for (p_, _), r in by.items() if p_ == pol
                      and r.get("policies")), None) or str(pol)
        rows.append([policy_name(label), *(_predicted_text(by.get((pol, m.name)), m)
                                                for m in metrics)])
    from_zero = any(c.endswith(FROM_ZERO) for r in rows for c in r[1:])
    sim_default = [m.label for m in metrics
                   if any(r.get("basis") == SIM_DEFAULTS for (_, n), r in by.items()
                          if n == m.name)]
    any_r = next(iter(by.values()))
    window = ""
    if any_r.get("replay_start") is not None and any_r.get("replay_end") is not None:
        warm = any_r.get("warmup_minutes")
        window = (f" The compared replay covers {fmt.ts(any_r['replay_start'])} to "
                  f"{fmt.ts(any_r['replay_end'])}"
                  + (f" after a {warm:.0f}-minute warm-up" if warm else "")
                  + (f", {any_r['seeds']} seeds" if any_r.get("seeds") else "") + ".")
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
               "arrivals and observed service times, with the client's timeout, abandonment "
               "and retries fitted from its attempts")
    note = ("Changes in % are relative to today's replay (same seeds); shares change in "
            "percentage points.")
    if from_zero:
        note += (" “from 0”: today's replay has 0 for that metric, so the change is given in "
                 "its unit (a relative change from zero is undefined).")
    if sim_default:
        note += (" " + ", ".join(sim_default) + ": modeled with the simulator's default GPU "
                 "efficiencies, not fitted to this pilot's GPU samples.")
    parts = [Part("", [how + ". Every figure in this section is modeled, not measured, "
                       "except the columns headed Measured." + window], tables=[Table(
                           "Predicted change per policy, all traffic (whatif_results, modeled)",
                           ["Policy", *(m.label for m in metrics)], rows, basis="modeled",
                           num_cols=tuple(range(1, len(metrics) + 1)), wrap_cols=(0,),
                           note=note)])]
    err = w.q("whatif_model_error", "SELECT * FROM whatif_model_error WHERE pilot = ? "
                                    "ORDER BY ALL")
    parts += _error_tables(err)
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
