"""Section 5: hidden operational losses (HCL, retries, DI, energy, priority inversion)."""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.metric_catalog import BY_NAME
from reports import fmt
from reports.coverage import Coverage
from reports.sections.common import (
    Reader,
    first_table,
    generic_table,
)
from reports.sections.operational_patterns import PatternSummary
from reports.types import Part, Table


def losses(w: Reader, hx: dict, ci: dict, summaries: Sequence[PatternSummary],
           cov: Coverage) -> list[Part]:
    def val(phase: str, name: str) -> str:
        r = hx.get((phase, "all", "overall", None, name))
        if r is None or r["value"] is None:
            note = (r or {}).get("note") or ""
            return note if note.startswith(fmt.NOT_MEASURED) else cov.for_metric(name)
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
    # GPU energy and power stand on their own when there are no requests to divide them by
    rows += [[label, val("baseline", n), val("validation", n), "metrics_headline"]
             for label, n in (("GPU energy drawn", "gpu_energy_j"),
                              ("GPU power, mean per GPU", "gpu_power_w"))
             if any(k[4] == n and r.get("value") is not None for k, r in hx.items())]
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
    elif w.has("findings") and cov.measured("pattern:priority_inversion"):
        rows.append(["Priority inversion loss", "none found (measured)", "none found (measured)",
                     "findings (priority_inversion)"])
    elif w.has("findings"):
        why = cov.not_tested("pattern:priority_inversion")
        rows.append(["Priority inversion loss", why, why, "patterns_tested"])
    else:
        rows.append(["Priority inversion loss", fmt.NOT_MEASURED + " — no findings table",
                     fmt.NOT_MEASURED, "—"])
    sla_loss = first_table(w, ("sla_loss", "sla_loss_without_shortage"))
    if sla_loss:
        d = w.q(sla_loss, f"SELECT * FROM {sla_loss} WHERE pilot = ?")
        extra = [generic_table(d, f"SLA loss without capacity shortage ({sla_loss})")]
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
    elif nom and nom["value"] is not None:
        text.append(f"In the baseline, GPUs reported {fmt.value(nom['value'], 'share')} "
                    f"nominal utilization; how much of it was productive (hidden capacity "
                    f"loss) is {cov.not_measured('hidden_capacity_loss')}.")
    r = hx.get(("baseline", "all", "overall", None, "retry_amplification"))
    if r and r["value"] is not None:
        text.append(f"Retries added {fmt.value(r['value'] - 1, 'share')} attempts on top of "
                    f"the logical requests (retry amplification {r['value']:.2f}, measured).")
    return [Part("", text, tables=[Table(
        "Hidden losses, all traffic (value and 95 % interval)",
        ["Loss", "Baseline", "Validation", "Source"], rows, num_cols=(1, 2),
        wrap_cols=(0, 3)), *extra])]


