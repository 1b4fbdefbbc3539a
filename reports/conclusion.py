"""What limited the pilot in the baseline phase: queueing, the GPUs, or neither — from numbers.

The conclusion is derived from the values the report's tables print (baseline phase, all traffic,
metrics_headline) and names each one with its scope: the tail of latency that queue waiting
accounts for (queue-wait P95 ÷ P95 latency), the Delay Index, effective utilization, and the
patterns' shares of the total queue wait when the findings table has them. "No dominant limit"
is said only when every one of those numbers is below its threshold (appendix A).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reports import fmt
from reports.sections.common import Reader, pattern_label

SCOPE = "baseline phase, all traffic"
TOP_PATTERNS = 3


@dataclass
class PatternShare:
    pattern: str
    label: str
    share: float  # of the total queue wait of the scope's attempts (0–1)


@dataclass
class Conclusion:
    kind: str  # queue | gpu | balanced | unknown
    sentence: str
    numbers: dict[str, float] = field(default_factory=dict)  # what the sentence quotes
    shares: list[PatternShare] = field(default_factory=list)

    @property
    def judged(self) -> bool:
        return self.kind != "unknown"


def _v(hx: dict, name: str) -> float | None:
    return (hx.get(("baseline", "all", "overall", None, name)) or {}).get("value")


def pattern_shares(w: Reader, phase: str = "baseline") -> list[PatternShare]:
    """Each pattern's share of the phase's total queue wait (findings.queue_wait_share, one
    attempt's wait attributed to at most one pattern); empty when the column is absent."""
    if "queue_wait_share" not in w.cols("findings"):
        return []
    d = w.q("findings", """SELECT pattern, sum(queue_wait_share) AS share FROM findings
              WHERE pilot = ? AND detected AND phase = ? AND queue_wait_share IS NOT NULL
              GROUP BY pattern ORDER BY share DESC, pattern""", phase)
    return [PatternShare(r["pattern"], pattern_label(r["pattern"]), float(r["share"]))
            for r in d.iter_rows(named=True) if r["share"]]


def cap_clause(hx: dict, phase: str = "baseline", segment: str = "all") -> str:
    """The queue-wait cap and how many attempts reached it, when the pipeline records them."""
    def v(n: str) -> float | None:
        return (hx.get((phase, segment, "overall", None, n)) or {}).get("value")
    cap, censored = v("queue_wait_cap_s"), v("queue_wait_censored_share")
    if cap is None and censored is None:
        return ""
    text = "queue waits count every attempt that waited, abandoned ones at their wait until " \
           "they left"
    if cap is not None:
        text += f", capped at {fmt.value(cap, 's')}"
    if censored is not None:
        text += f"; {fmt.value(censored, 'share')} of attempts reached the cap (right-censored)"
    return text


def conclude(hx: dict, th: dict[str, float], shares: list[PatternShare] | None = None
             ) -> Conclusion:
    """Queue-dominated, GPU-limited or balanced: one sentence quoting the numbers it used."""
    shares = shares or []
    p95, qw95 = _v(hx, "p95_latency_s"), _v(hx, "queue_wait_p95_s")
    di, eff, nom, hcl = (_v(hx, n) for n in ("delay_index", "effective_util", "nominal_util",
                                             "hcl_pp"))
    tail = qw95 / p95 if qw95 is not None and p95 else None
    nums: dict[str, Any] = {k: v for k, v in (("queue_wait_p95_s", qw95), ("p95_latency_s", p95),
                                             ("tail_queue_share", tail), ("delay_index", di),
                                             ("effective_util", eff)) if v is not None}
    queue_signals = [x for x in (tail, di) if x is not None]
    if eff is None or not queue_signals:
        missing = [n for n, x in (("effective utilization", eff),
                                  ("queue-wait P95 and P95 latency, or the Delay Index",
                                   tail if tail is not None else di)) if x is None]
        return Conclusion("unknown", "Whether the pilot was limited by queueing or by its GPUs "
                          f"cannot be judged ({SCOPE}): " + " and ".join(missing)
                          + " not measured.", nums, shares)
    sat, di_th, tail_th = (th["compute_saturation_util"], th["di"],
                           th.get("tail_queue_share", 0.5))
    queue_heavy = (tail is not None and tail >= tail_th) or (di is not None and di > di_th)
    facts = []
    if tail is not None:
        assert qw95 is not None and p95 is not None
        facts.append(f"queue-wait P95 was {fmt.value(qw95, 's')}, {fmt.value(tail, 'share')} "
                     f"of P95 latency ({fmt.value(p95, 's')}; threshold "
                     f"{fmt.value(tail_th, 'share')})")
    if di is not None:
        facts.append(f"queue waiting was {fmt.value(di, 'share')} of completed attempts' "
                     f"latency (Delay Index; threshold {fmt.value(di_th, 'share')})")
    util = (f"effective GPU utilization was {fmt.value(eff, 'share')} "
            f"({'≥' if eff >= sat else '<'} {fmt.value(sat, 'share')} saturation)")
    if nom is not None and hcl is not None and hcl > th["hcl_pp"]:
        util += (f", while nominal utilization ({fmt.value(nom, 'share')}) overstated "
                 f"productive use by {fmt.value(hcl, 'pp')}")
    top = shares[:TOP_PATTERNS]
    pats = ("; the largest patterns held " + ", ".join(
        f"{s.label.lower()} {fmt.value(s.share, 'share')}" for s in top)
        + " of the total queue wait (findings)") if top else ""
    if eff >= sat:
        kind = "gpu"
        head = ("GPU-limited: the GPUs were productively saturated, so queueing follows from "
                "compute capacity")
    elif queue_heavy:
        kind = "queue"
        head = ("queue-dominated: latency was lost waiting in queues while the GPUs had "
                "productive capacity left")
    else:
        kind = "balanced"
        head = "no dominant limit: neither queueing nor GPU saturation crossed its threshold"
    sentence = (f"In the {SCOPE}, the pilot was {head}. Evidence: " + "; ".join(facts)
                + f"; {util}{pats}.")
    cap = cap_clause(hx)
    if cap:
        sentence += f" Scope of the queue figures: {cap}."
    return Conclusion(kind, sentence, nums, shares)
