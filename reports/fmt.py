"""Number formatting for the report: every printed figure goes through here, so units read alike.

Values arrive in the warehouse's units (seconds, shares 0–1, percentage points, …); the report
prints them in the unit a reader expects (ms for sub-second latencies, % for shares).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta

MINUS = "\u2212"  # typographic minus: a hyphen is easy to miss in a table of changes
NOT_MEASURED = "not measured"


def _num(v: float, digits: int) -> str:
    return f"{v:,.{digits}f}".replace("-", MINUS)


def _is_missing(v: float | None) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def value(v: float | None, unit: str, extra: int = 0) -> str:
    """A measured value in its display unit; None prints as 'not measured'.

    `extra` adds decimals: an interval bound that is not zero must not print as zero."""
    if _is_missing(v):
        return NOT_MEASURED
    assert v is not None
    if unit == "share":
        return f"{_num(100 * v, 1 + extra)} %"
    if unit == "pp":
        return f"{_num(v, 1 + extra)} pp"
    if unit == "s":
        return (f"{_num(1000 * v, extra)} ms" if abs(v) < 1
                else f"{_num(v, 2 + extra)} s")
    if unit == "ratio":
        return f"{_num(v, 2 + extra)}\u00d7"
    if unit == "count":
        return _num(v, 0)
    if unit == "J":
        if abs(v) >= 1e6:  # a phase's GPU energy: megajoules and kWh read better than 8 digits
            return f"{_num(v / 1e6, 2)} MJ ({_num(v / 3.6e6, 2)} kWh)"
        return f"{_num(v, 1 if abs(v) < 100 else 0)} J"
    if unit == "B":
        return f"{_num(v / 2**30, 1)} GiB"
    if unit in ("W", "requests", "/min", "GPU-h"):
        return f"{_num(v, 1 if abs(v) >= 10 else 2)} {unit}"
    if unit in ("req/s", "req/s/GPU"):
        return f"{_num(v, 2 if abs(v) < 10 else 1)} {unit}"
    return f"{_num(v, 3)} {unit}".strip()


def change(v: float | None, unit: str, extra: int = 0) -> str:
    """A signed absolute change; shares change in percentage points, not percent."""
    if _is_missing(v):
        return "—"
    assert v is not None
    sign = "+" if v > 0 else ""
    if unit == "share":
        return f"{sign}{_num(100 * v, 1 + extra)} pp"
    return sign + value(v, unit, extra)


def rel(v: float | None, extra: int = 0) -> str:
    """A signed relative change given as a fraction (−0.28 → '−28.0 %')."""
    if _is_missing(v):
        return "—"
    assert v is not None
    return ("+" if v > 0 else "") + f"{_num(100 * v, 1 + extra)} %"


MAX_EXTRA_DIGITS = 3  # an interval bound printed with up to 3 more decimals before giving up


def reads_zero(text: str) -> bool:
    """True when a printed number shows only zeros ('−0.0 pp', '0 ms', '+0.00 %')."""
    digits = re.sub(r"[^0-9]", "", text.split(" (")[0])
    return not digits.strip("0")


def _bound(v: float, show: Callable[[float, int], str]) -> str:
    """A bound with just enough decimals that a non-zero value does not read as zero."""
    for extra in range(MAX_EXTRA_DIGITS + 1):
        text = show(v, extra)
        if v == 0 or not reads_zero(text):
            return text
    return text


def excludes_zero(lo: float | None, hi: float | None, shown: str) -> bool | None:
    """Whether an interval excludes zero AS PRINTED (`shown` = its printed text): both bounds
    on one side of zero and neither printed as a zero. None without an interval."""
    if _is_missing(lo) or _is_missing(hi):
        return None
    assert lo is not None and hi is not None
    if not (lo > 0 or hi < 0):
        return False
    return not any(reads_zero(b) for b in shown.strip("[]").split(", "))


def moved(rel_change: float | None, abs_change: float | None, unit: str) -> str:
    """Neutral wording of a change — no 'improved', no significance (no intervals yet)."""
    if _is_missing(abs_change):
        return "could not be compared"
    assert abs_change is not None
    if abs_change == 0:
        return "did not change"
    verb = "increased" if abs_change > 0 else "decreased"
    if unit in ("share", "pp") or _is_missing(rel_change):  # a % of a share reads ambiguously
        return f"{verb} by {change(abs(abs_change), unit).lstrip('+')}"
    assert rel_change is not None
    return f"{verb} by {_num(abs(100 * rel_change), 1)} %"


def ts(t: datetime | None) -> str:
    return "—" if t is None else t.strftime("%Y-%m-%d %H:%M UTC")


def duration(d: timedelta) -> str:
    hours = d.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def count(n: int | float | None) -> str:
    return "—" if n is None else _num(float(n), 0)


def share(n: float, d: float) -> str:
    return "—" if not d else f"{_num(100 * n / d, 1)} %"


def interval(lo: float | None, hi: float | None, unit: str) -> str:
    """A 95 % interval of a value: '[1.21 s, 1.40 s]'; '' when there is none."""
    if _is_missing(lo) or _is_missing(hi):
        return ""
    return f"[{value(lo, unit)}, {value(hi, unit)}]"


def change_interval(lo: float | None, hi: float | None, unit: str) -> str:
    """Interval of an absolute change (shares in pp); a non-zero bound never prints as 0."""
    if _is_missing(lo) or _is_missing(hi):
        return ""
    assert lo is not None and hi is not None
    return (f"[{_bound(lo, lambda v, e: change(v, unit, e))}, "
            f"{_bound(hi, lambda v, e: change(v, unit, e))}]")


REL_BOUND_CAP = 10.0  # ±1,000 %: beyond it a relative bound says only "the baseline ~ 0"


def _rel_bound(v: float) -> str:
    # A resampled baseline near zero sends a ratio's bound to +105,119 %: digits that read
    # as precision but only say the denominator's interval reaches ~0. Print the cap instead.
    if v > REL_BOUND_CAP:
        return f"> {rel(REL_BOUND_CAP, -1)}"
    if v < -REL_BOUND_CAP:
        return f"< {rel(-REL_BOUND_CAP, -1)}"
    return _bound(v, rel)


def rel_interval(lo: float | None, hi: float | None) -> str:
    """Interval of a relative change; bounds beyond ±1,000 % print as '> +1,000 %'."""
    if _is_missing(lo) or _is_missing(hi):
        return ""
    assert lo is not None and hi is not None
    return f"[{_rel_bound(lo)}, {_rel_bound(hi)}]"


def two_lines(first: str, second: str) -> str:
    """A value and its interval in one table cell (cells keep the line break: CSS pre-line)."""
    return f"{first}\n{second}" if second else first


def verdict(significant: bool | None) -> str:
    """Words for an interval test: the report never calls a change significant without one."""
    if significant is None:
        return "no interval"
    return "significant" if significant else "no significant change"


def long_duration(seconds: float | None) -> str:
    """Summed waiting/latency costs: minutes or hours once they pass an hour's worth of s."""
    if _is_missing(seconds):
        return NOT_MEASURED
    assert seconds is not None
    if abs(seconds) >= 3600:
        return f"{_num(seconds / 3600, 1)} h"
    if abs(seconds) >= 120:
        return f"{_num(seconds / 60, 1)} min"
    return value(seconds, "s")
