"""Words an operator can act on: policy names in plain language, and findings evidence as one
sentence with units (not a key/value dump), one row per job.

Used by the sections that print policies (section 6) and findings evidence (section 3). Text
from telemetry (job tokens, pool names) stays plain text: the template escapes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from reports import fmt

POLICY_NAMES: dict[str, str] = {
    "fifo_shared": "today's policy (one shared first-in-first-out queue per pool, batch jobs "
                   "on the same GPUs)",
    "priority": "priority-aware scheduling (P0 first)",
    "batch_separation": "inference–batch separation (batch jobs on reserved nodes)",
    "burst_buffering": "burst buffering (paced admission)",
    "segmentation": "resource segmentation (GPU slots reserved for high classes)",
    "jsq": "latency-aware load distribution (join the least-loaded pool)",
    "power_of_two": "power-of-two-choices routing",
    "random_routing": "random routing (reference)",
    "declared": "the declared adjustments",
    # pilot.yaml adjustment names
    "priority_scheduling": "priority-aware scheduling (P0 first)",
    "inference_batch_separation": "inference–batch separation (batch jobs on reserved nodes)",
    "resource_segmentation": "resource segmentation (GPU slots reserved for high classes)",
    "latency_aware_load_distribution": "latency-aware load distribution (join the "
                                       "least-loaded pool)",
}


def policy_name(code: str) -> str:
    """'jsq' → 'latency-aware load distribution (…)'; a combination 'a+b' names each part;
    an unknown code reads as words, never as an identifier."""
    parts = [p for p in str(code).replace(",", "+").split("+") if p.strip()]
    return " + ".join(POLICY_NAMES.get(p.strip(), p.strip().replace("_", " ")) for p in parts)


def _s(v: Any) -> str:
    return fmt.long_duration(float(v))


def _n(v: Any) -> str:
    return fmt.count(v)


def _share(v: Any) -> str:
    return fmt.value(float(v), "share")


# Per pattern: (evidence key, how to say it). Keys not listed are left out of the sentence
# (they are in the findings table); a key whose value is missing is skipped.
_SAY: dict[str, list[tuple[str, Callable[[Any], str]]]] = {
    "batch_scheduling_conflict": [
        ("kind", lambda v: f"a {v} job"),
        ("gpus", lambda v: f"on {_n(v)} GPU{'s' if v != 1 else ''}"),
        ("attempts_waiting", lambda v: f"overlapped {_n(v)} waiting inference attempts"),
        ("share_of_pool_attempts", lambda v: f"({_share(v)} of the pool's attempts)"),
        ("wait_overlap_s", lambda v: f"whose waits summed to {_s(v)}"),
    ],
    "priority_inversion": [
        ("kind", lambda v: f"a {v} job"),
        ("held_s", lambda v: f"held its GPUs for {_s(v)}"),
        ("p0_p1_attempts_waiting", lambda v: f"while {_n(v)} P0/P1 attempts waited"),
        ("inversion_time_s", lambda v: f"for {_s(v)} of summed wait"),
    ],
    "burst_amplification": [
        ("rate_ratio", lambda v: f"arrivals rose to {float(v):.1f}× the trailing rate"),
        ("queue_wait_p95_s", lambda v: f"and queue-wait P95 reached {fmt.value(float(v), 's')}"),
        ("trailing_queue_wait_p95_s",
         lambda v: f"against {fmt.value(float(v), 's')} before the burst"),
        ("amplification", lambda v: f"({float(v):.1f}× amplification)"),
    ],
    "legitimate_vs_amplifying_queueing": [
        ("verdict", lambda v: f"{v} queueing:"),
        ("arrivals_per_min", lambda v: f"{_n(v)} arrivals/min"),
        ("trailing_arrivals_per_min", lambda v: f"against {_n(v)} before,"),
        ("queue_wait_p95_s", lambda v: f"queue-wait P95 {fmt.value(float(v), 's')}"),
        ("trailing_queue_wait_p95_s", lambda v: f"against {fmt.value(float(v), 's')} before,"),
        ("duration_s", lambda v: f"lasting {_s(v)}"),
    ],
    "idle_overload_oscillation": [
        ("from", lambda v: f"the pool went from {v}"),
        ("to", lambda v: f"to {v}"),
        ("minutes_apart", lambda v: f"within {float(v):g} min"),
    ],
    "retry_timeout_amplification": [
        ("timeouts", lambda v: f"{_n(v)} timeouts"),
        ("retries_next_window", lambda v: f"were followed by {_n(v)} retries"),
        ("explained_share", lambda v: f"({_share(v)} of them explained by the timeouts);"),
        ("retry_share_during_spike", lambda v: f"retries were {_share(v)} of attempts in the "
                                               f"spike"),
        ("retry_share_outside", lambda v: f"against {_share(v)} outside it"),
    ],
    "non_productive_queue_waiting": [
        ("DI", lambda v: f"queue waits were {100 * float(v):.0f} % of the completed attempts' "
                         f"end-to-end time (Delay Index {float(v):.2f}"),
        ("threshold", lambda v: f"against a threshold of {float(v):g})"),
    ],
    "energy_latency_mismatch": [
        ("spearman_rho", lambda v: f"GPU power and P95 latency per minute were rank-correlated at "
                                   f"Spearman ρ = {float(v):.2f}"),
        ("latency_p95_cv", lambda v: f"while P95 latency varied with CV {float(v):.2f}"),
        ("minutes", lambda v: f"over {_n(v)} minutes;"),
        ("j_per_good_request", lambda v: f"{_n(v)} J per good request"),
    ],
    "hidden_gpu_occupancy_loss": [
        ("HCL", lambda v: f"nominal utilization exceeded effective by {fmt.value(float(v), 'pp')}"),
        ("threshold", lambda v: f"(threshold {fmt.value(float(v), 'pp')})"),
        ("note", lambda v: f"— {v}"),
    ],
}
_JOB_PATTERNS = ("batch_scheduling_conflict", "priority_inversion")


def evidence_sentence(pattern: str, raw: str | None) -> str:
    """evidence_json as one sentence with units; the job token (for `stabilis reveal`) last."""
    if not raw:
        return "—"
    try:
        ev = json.loads(raw)
    except (TypeError, ValueError):
        return str(raw)
    if not isinstance(ev, dict):
        return str(ev)
    say = _SAY.get(pattern)
    if say is None:  # a pattern without wording yet: its numbers, rounded, in plain words
        bits = [f"{str(k).replace('_', ' ')} "
                f"{f'{v:,.3g}' if isinstance(v, float) else v}"
                for k, v in ev.items() if v is not None and k != "input"
                and not isinstance(v, list | dict)]
        return ("; ".join(bits) + ".") if bits else "—"
    bits = [f(ev[k]) for k, f in say if ev.get(k) is not None]
    text = " ".join(bits)
    text = text[:1].upper() + text[1:] if text else "—"
    if pattern in _JOB_PATTERNS and ev.get("job_id"):
        text += f" (job {ev['job_id']})"
    return text + "."


def one_row_per_job(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Findings rows with the same job in their evidence (a multi-GPU job repeated per GPU)
    collapse to the first, keeping the order; rows without a job stay as they are."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for r in rows:
        try:
            job = json.loads(r.get("evidence_json") or "{}").get("job_id")
        except (TypeError, ValueError, AttributeError):
            job = None
        key = (r.get("pattern"), r.get("phase"), job)
        if job is not None and key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out
