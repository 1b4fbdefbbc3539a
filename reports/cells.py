"""Metric cells shared by the report's tables: a metric's words, its printed value and basis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from pipelines.metric_catalog import BY_NAME, Metric
from reports import fmt
from reports.coverage import Coverage


def headline_index(df: pl.DataFrame) -> dict[tuple, dict[str, Any]]:
    if df.is_empty():
        return {}
    return {(r["phase"], r["segment"], r["breakdown"], r["breakdown_value"], r["metric"]): r
            for r in df.iter_rows(named=True)}


def metric_of(name: str, row: dict[str, Any] | None = None) -> Metric:
    """The catalog entry of a metric, or plain words for a name the catalog does not know yet
    (a model may add a metric before its words reach pipelines.metric_catalog)."""
    if name in BY_NAME:
        return BY_NAME[name]
    return Metric(name, name.replace("_", " ").strip().capitalize(), (row or {}).get("unit")
                  or "", "none", "not in pipelines.metric_catalog yet", headline=False)


def metric_text(row: dict[str, Any] | None, metric: Metric, cov: Coverage) -> str:
    if row is None:
        return cov.for_metric(metric.name)
    if row["value"] is None:
        why = row.get("note") or ""
        if why.startswith(fmt.NOT_MEASURED):
            return why
        return f"{fmt.NOT_MEASURED} — {why}" if why else cov.for_metric(metric.name)
    return fmt.value(row["value"], row.get("unit") or metric.unit)


def has_value(row: dict[str, Any] | None) -> bool:
    return bool(row) and row.get("value") is not None  # type: ignore[union-attr]


def label_of(metric: Metric, row: dict[str, Any] | None = None) -> str:
    """The metric's words, saying how it was obtained when that is not exact rows."""
    if not has_value(row):
        return metric.label
    assert row is not None
    note, basis = row.get("note") or "", row.get("basis") or ""
    # effective utilization names which source it used (sm_active vs productive-time)
    if metric.name == "effective_util" and note:
        return f"{metric.label} ({note})"
    if basis == "approximate" or note.startswith("approximate"):
        return f"{metric.label} (approximate: histogram buckets)"
    if basis == "aggregate":
        # "mean of per-interval P95s" is already in the label of a series metric
        return (f"{metric.label} (aggregate)" if "per-interval" in metric.label
                else f"{metric.label} (aggregate: from per-interval series)")
    return metric.label


def basis_text(row: dict[str, Any] | None) -> str:
    """Basis column: the row's basis and, when the note says how, how it was computed."""
    if not has_value(row):
        return "—"
    assert row is not None
    note = row.get("note") or ""
    basis = row.get("basis") or "measured"
    how = note.split(": ", 1)[1] if note.startswith(basis + ": ") else note
    return f"{basis} — {how}" if how else basis


def bases(rows: Sequence[dict[str, Any] | None]) -> str:
    found = sorted({r.get("basis") or "measured" for r in rows if has_value(r)})
    return ", ".join(found) if found else "measured"


def overall_row(hx: dict, name: str) -> dict[str, Any] | None:
    return hx.get(("baseline", "all", "overall", None, name))

