"""Vectorized value conversions shared by the adapters: timestamps (ISO, strftime, epochs,
relative offsets), numbers with units, and the reject rows for values that do not convert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from pipelines.ingest.base import LINE, MAX_VALUE_CHARS, REJECT_SCHEMA, SourceError
from schemas.common import IDENTIFIER_COLUMNS

EPOCH_UNITS = {"epoch_s": 1e6, "epoch_ms": 1e3, "epoch_us": 1.0, "epoch_ns": 1e-3}
DURATION_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}
SCALE_UNITS = {
    "percent": 0.01,
    "%": 0.01,
    "ratio": 1.0,
    "bytes": 1.0,
    "B": 1.0,
    "KiB": 1024.0,
    "MiB": 1024.0**2,
    "GiB": 1024.0**3,
    "KB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
    "W": 1.0,
    "mW": 1e-3,
    "J": 1.0,
    "mJ": 1e-3,
    "kJ": 1e3,
}
UNITS = sorted({*EPOCH_UNITS, *DURATION_UNITS, *SCALE_UNITS, "iso"})
# Plausible telemetry years: a timestamp outside is a unit mix-up (ms read as s) or junk.
TS_MIN, TS_MAX = datetime(1990, 1, 1), datetime(2200, 1, 1)
MISSING_TEXT = ("", "unknown", "none", "n/a", "[n/a]", "[not supported]", "nan", "null")


@dataclass(frozen=True)
class Conv:
    """Convert one column: `out` is null when the value does not convert; a row whose
    source value was `given` but converts to null is refused with `reason`."""

    out: pl.Expr
    given: pl.Expr
    reason: str


def text(col: str) -> pl.Expr:
    """Trimmed text, null when empty or a conventional missing marker (Unknown, [N/A], ...)."""
    s = pl.col(col).cast(pl.String).str.strip_chars()
    # nvidia-smi writes every "no value" as a bracketed note: [N/A], [Not Supported], ...
    missing = s.str.to_lowercase().is_in(list(MISSING_TEXT)) | s.str.contains(r"^\[.*\]$")
    return pl.when(~missing).then(s)


def number(col: str, unit: str | None = None) -> Conv:
    """A number (optionally with a trailing unit word, as nvidia-smi writes `631.95 W`)."""
    s = text(col).str.replace(r"\s*[A-Za-z%/]+$", "")
    v = s.cast(pl.Float64, strict=False)
    v = pl.when(v.is_finite()).then(v)
    factor = _unit_factor(unit)
    return Conv(v * factor if factor != 1.0 else v, text(col).is_not_null(), _expect_num(unit))


def timestamp(col: str, unit: str | None, tz: str, fmt: str | None = None,
              anchor: datetime | None = None) -> Conv:
    """Absolute or relative time -> naive UTC Datetime(us).

    unit: iso (default) | epoch_s/ms/us/ns | s/ms/us (offset from `anchor`); `fmt` is a
    strftime pattern; naive wall times are read in `tz`."""
    s = text(col)
    if unit in EPOCH_UNITS or (unit in DURATION_UNITS and anchor is not None):
        f = s.cast(pl.Float64, strict=False)
        if unit in EPOCH_UNITS:
            us = f * EPOCH_UNITS[unit]
            base = 0
            reason = f"expected a number ({unit})"
        else:
            assert anchor is not None
            us = f * DURATION_UNITS[unit] * 1e6
            base = int(anchor.replace(tzinfo=UTC).timestamp() * 1e6)
            reason = f"expected a time offset in {unit} from the anchor"
        us = pl.when(us.is_finite() & (us.abs() < 2e17)).then(us).cast(pl.Int64) + base
        out = pl.from_epoch(us, time_unit="us")
    elif unit in (None, "iso") or fmt:
        norm = s.str.replace(r"[zZ]$", "+00:00").str.replace(r"^(\d{4}-\d\d-\d\d)[ t]", "${1}T")
        if fmt:
            naive = s.str.to_datetime(fmt, strict=False, time_unit="us")
            aware = pl.lit(None, dtype=pl.Datetime("us"))
            reason = f"expected a timestamp like {fmt}"
        else:
            aware = norm.str.to_datetime(
                "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_unit="us", time_zone="UTC"
            ).dt.replace_time_zone(None)
            naive = norm.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
            reason = "expected an ISO-8601 timestamp"
        out = pl.coalesce(aware, local_to_utc(naive, tz))
    else:
        raise SourceError(f"unknown time unit {unit!r} for column {col!r}; expected one of "
                          + ", ".join(["iso", *EPOCH_UNITS, *DURATION_UNITS]))
    out = pl.when(out.is_between(TS_MIN, TS_MAX)).then(out)
    return Conv(out, s.is_not_null(), reason)


def local_to_utc(naive: pl.Expr, tz: str) -> pl.Expr:
    if tz in ("UTC", "Etc/UTC"):
        return naive
    return (
        naive.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
        .dt.replace_time_zone(None)
    )


def apply(df: pl.DataFrame, convs: dict[str, Conv], source_cols: dict[str, str] | None = None
          ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply conversions (target column -> Conv). Returns (rows that converted, with targets
    replaced, rejects: one per failed field, showing the source text unless an identifier)."""
    source_cols = source_cols or {}
    if not convs:
        return df, pl.DataFrame(schema=REJECT_SCHEMA)
    work = df.with_columns(
        *[c.out.alias(f"__c_{k}") for k, c in convs.items()],
        *[(c.given & c.out.is_null()).fill_null(False).alias(f"__f_{k}") for k, c in convs.items()],
    )
    parts = []
    for k, c in convs.items():
        src = source_cols.get(k, k)
        shown = (
            pl.lit(None, dtype=pl.String)
            if k in IDENTIFIER_COLUMNS or src not in df.columns
            else pl.col(src).cast(pl.String).str.slice(0, MAX_VALUE_CHARS)
        )
        parts.append(
            work.filter(pl.col(f"__f_{k}")).select(
                pl.col(LINE).alias("line"),
                pl.lit(k, dtype=pl.String).alias("field"),
                pl.lit(c.reason, dtype=pl.String).alias("reason"),
                shown.alias("value"),
            )
        )
    rejects = pl.concat([p.cast(REJECT_SCHEMA) for p in parts])  # type: ignore[arg-type]
    bad = pl.any_horizontal(pl.col(f"__f_{k}") for k in convs)
    good = (
        work.filter(~bad)
        .drop([k for k in convs if k in work.columns])
        .rename({f"__c_{k}": k for k in convs})
        .drop([f"__f_{k}" for k in convs])
    )
    return good, rejects


def _unit_factor(unit: str | None) -> float:
    if unit is None:
        return 1.0
    if unit in SCALE_UNITS:
        return SCALE_UNITS[unit]
    if unit in DURATION_UNITS:
        return DURATION_UNITS[unit]  # durations are stored in seconds
    raise SourceError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")


def _expect_num(unit: str | None) -> str:
    return "expected a number" + (f" ({unit})" if unit else "")


def parse_instant(value: object, tz: str = "UTC") -> datetime | None:
    """One option value (ISO text, datetime or epoch seconds) -> naive UTC, or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        d = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
    else:
        try:
            d = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if d.tzinfo is None:
        from zoneinfo import ZoneInfo

        d = d.replace(tzinfo=ZoneInfo(tz))
    return d.astimezone(UTC).replace(tzinfo=None)
