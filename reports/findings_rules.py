"""Threshold rules on the baseline headline metrics: the findings when no detector ran."""

from __future__ import annotations

from collections.abc import Callable

from pipelines.metric_catalog import BY_NAME
from reports import fmt
from reports.types import Finding


def rule_findings(hx: dict, th: dict[str, float]) -> tuple[list[Finding], list[str], int]:
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

