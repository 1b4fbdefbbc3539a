"""Power estimate: how long the validation phase must run to detect a change at 80 % power.

A closed-form read of metrics_ci's block-bootstrap intervals (docs/METRICS.md §8, "Power
estimate"); no resampling here. Assumptions, stated in the table note:
- the interval is about normal: SE ≈ (hi − lo) / (2 · z), z = 1.96 at level 0.95;
- baseline and validation blocks have the same per-block variance, so the variance of the
  change (or DiD) is k · (1/n_b + 1/n_v) with n_* the blocks of each phase (metrics_ci's
  `blocks_*`): the baseline part is fixed, lengthening validation only shrinks 1/n_v;
- a change δ is detected at two-sided α = 0.05 with 80 % power when SE ≤ |δ| / (z_α + z_β).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from statistics import NormalDist
from typing import Any, Literal

from pipelines.metric_catalog import HEADLINE, Metric
from reports import fmt
from reports.types import Table

ALPHA = 0.05
POWER = 0.80
Z_ALPHA = NormalDist().inv_cdf(1 - ALPHA / 2)  # 1.960
Z_POWER = NormalDist().inv_cdf(POWER)  # 0.842
SHARE_STEP = {"share": 0.01, "pp": 1.0}  # "a 10 % change" of a share is read as 1 pp
RELATIVE_STEP = 0.10

Status = Literal["detectable", "blocks", "unreachable", "no_effect", "unknown"]


@dataclass(frozen=True)
class Need:
    status: Status
    blocks: int | None = None  # validation blocks needed (status "blocks")


def se_from_interval(lo: float | None, hi: float | None, level: float = 0.95) -> float | None:
    """Standard error read off a (normal-approximate) interval; None without one."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return (hi - lo) / (2 * NormalDist().inv_cdf(0.5 + level / 2))


def target_se(delta: float) -> float:
    """The SE at which a true change |delta| is detected at α = 0.05 with 80 % power."""
    return abs(delta) / (Z_ALPHA + Z_POWER)


def required_validation_blocks(se_now: float | None, delta: float | None, n_baseline: int,
                               n_validation: int) -> Need:
    """Validation blocks needed so that the change's SE reaches target_se(delta).

    SE² = k (1/n_b + 1/n_v); k from the current SE; solve k (1/n_b + 1/n_v') = SE_target².
    """
    if (se_now is None or delta is None or not math.isfinite(delta)
            or n_baseline <= 0 or n_validation <= 0):
        return Need("unknown")
    if delta == 0:  # no effect to detect: no length is enough
        return Need("no_effect")
    se_t = target_se(delta)
    if se_now <= se_t:
        return Need("detectable")
    k = se_now**2 / (1 / n_baseline + 1 / n_validation)
    room = se_t**2 / k - 1 / n_baseline  # what 1/n_v' may still be
    if room <= 0:  # the baseline's share of the variance alone is above the target
        return Need("unreachable")
    return Need("blocks", math.ceil(1 / room))


def ten_percent_delta(baseline: float | None, m: Metric) -> float | None:
    """The reference effect: 1 pp for shares and pp metrics, else 10 % of the baseline level."""
    if m.unit in SHARE_STEP:
        return SHARE_STEP[m.unit]
    if baseline is None or not math.isfinite(baseline) or baseline == 0:
        return None
    return RELATIVE_STEP * abs(baseline)


def _effect(r: dict[str, Any]) -> tuple[str, float | None, float | None, float | None]:
    """(kind, point, lo, hi): the DiD where the row has one (a control exists), else change."""
    if r.get("did") is not None and r.get("did_lo") is not None:
        return "DiD", r["did"], r["did_lo"], r["did_hi"]
    return "change", r.get("change"), r.get("change_lo"), r.get("change_hi")


def _words(need: Need, n_v: int, block_s: float) -> str:
    if need.status == "detectable":
        return "already detectable"
    if need.status == "unreachable":
        return "not reachable by lengthening validation alone"
    if need.status == "no_effect":
        return "no change observed"
    if need.status == "unknown" or need.blocks is None:
        return "—"
    length = fmt.duration(timedelta(seconds=need.blocks * block_s))
    return f"{length} ({need.blocks} blocks, {need.blocks / n_v:.1f}× now)"


def _se_text(se: float | None, unit: str) -> str:
    # a share's SE reads in pp, like its change
    return fmt.value(None if se is None else 100 * se, "pp") if unit == "share" \
        else fmt.value(se, unit)


def power_rows(ci: Mapping[tuple[str, str], dict[str, Any]]) -> list[list[str]]:
    """One row per headline metric of the scope a claim rests on: treatment (DiD) where a
    control exists, else all traffic (change). `ci`: sections.ci_index(w)."""
    seg = "treatment" if any(s == "treatment" and r.get("did") is not None
                             for (s, _), r in ci.items()) else "all"
    rows: list[list[str]] = []
    for m in HEADLINE:
        r = ci.get((seg, m.name))
        if r is None:
            continue
        kind, point, lo, hi = _effect(r)
        se = se_from_interval(lo, hi, r.get("level") or 0.95)
        n_b, n_v = int(r.get("blocks_baseline") or 0), int(r.get("blocks_validation") or 0)
        block_s = float(r.get("block_s") or 0.0)
        ref = ten_percent_delta(r.get("baseline"), m)
        ref_need = _words(required_validation_blocks(se, ref, n_b, n_v), n_v, block_s)
        ref_words = ("1 pp: " if m.unit in SHARE_STEP else f"{fmt.value(ref, m.unit)}: "
                     if ref is not None else "") + ref_need
        rows.append([
            m.label,
            f"{kind}, {seg}",
            fmt.two_lines(fmt.change(point, m.unit), fmt.change_interval(lo, hi, m.unit)),
            _se_text(se, m.unit),
            _words(required_validation_blocks(se, point, n_b, n_v), n_v, block_s),
            ref_words,
        ])
    return rows


def power_table(ci: Mapping[tuple[str, str], dict[str, Any]]) -> Table:
    """Section 8's power table. Basis: the effect and SE are measured (metrics_ci); the
    lengths are approximate (a normal-approximation projection, not the simulator's model).

    `ci` is metrics_ci keyed by (segment, metric), as reports.sections.ci_index returns it."""
    first: dict[str, Any] = next(iter(ci.values()), {})
    n_v, block_s = first.get("blocks_validation"), first.get("block_s")
    now = (f" Validation now: {n_v} blocks of {block_s:.0f} s."
           if n_v and block_s else "")
    return Table(
        caption="Power estimate: validation length needed to detect a change at 80 % power",
        columns=["Metric", "Effect (scope)", "Observed effect [95 % interval]", "SE now",
                 "Validation for the observed effect", "Validation for a 10 % change"],
        rows=power_rows(ci),
        basis="measured, approximate",
        num_cols=(2, 3),
        nowrap_cols=(0,),
        empty="No intervals in metrics_ci for this pilot: no power estimate.",
        note=("Read off the block-bootstrap intervals of metrics_ci: SE = interval width ÷ "
              "3.92; detecting an effect δ at two-sided α = 0.05 with 80 % power needs "
              "SE ≤ |δ| ÷ 2.80. Assumes equal per-block variance in both phases, so SE² ∝ "
              "1/baseline blocks + 1/validation blocks: the baseline part stays fixed and only "
              "a longer validation phase shrinks the rest. \"10 % change\" is 10 % of the "
              "baseline level, or 1 pp for shares and pp metrics. \"Already detectable\": the "
              "current interval is narrow enough." + now),
    )
