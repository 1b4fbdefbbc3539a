"""Materialization metadata that makes the Dagster UI a control room for a warehouse table.

Column schema from information_schema (what the table is after this run, not what the code
meant it to be), each column described from COLUMN_DOCS or the metric catalog, and a small
markdown preview of the pilot's first rows. Also the code versions of the Python assets (a
hash of their sources), so the UI can say which assets are stale after a code change.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from pipelines.metric_catalog import BY_NAME as METRICS

OWNERS = ["team:stabilis"]
PREVIEW_ROWS = 5
PREVIEW_CELL_CHARS = 40
_MD_ESCAPES = str.maketrans(
    {c: "\\" + c for c in "\\|*_`[]<>#"} | {"\n": " ", "\r": " ", "\t": " "}
)


PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Columns many tables share; a column named after a catalog metric takes its definition.
COLUMN_DOCS = {
    "pilot": "Pilot slug (the Dagster partition); every table is replaced per pilot.",
    "phase": "Pilot phase from pilot.yaml: baseline or validation ('all' spans both).",
    "segment": "Treatment or control pools of the validation design ('all': every pool).",
    "breakdown": "What the row is broken down by ('all', pool, priority, ...).",
    "breakdown_value": "The value of the breakdown (empty for 'all').",
    "metric": "Metric name; its definition is in docs/METRICS.md and the metric catalog.",
    "value": "The metric's value in `unit`.",
    "unit": "Unit of the value (s, share 0-1, pp, req/s, J, W, ...).",
    "basis": "How the value was obtained: measured, approximate, aggregate or modeled.",
    "note": "Why a value is missing or qualified (e.g. 'not measured: needs ...').",
    "pool": "GPU pool (serving pool of the cluster).",
    "node": "Node token (HMAC of the node name; never the raw name).",
    "gpu": "GPU token (HMAC of the GPU id; never the raw id).",
    "window_start": "Start of the time window (UTC).",
    "ts": "Sample time (UTC).",
    "episode_id": "Episode number within the pilot, pool or segment.",
    "thresholds_json": "The pilot's thresholds this row was judged with (pilot.yaml).",
    "severity": "Severity of the finding.",
}


def column_description(name: str) -> str | None:
    if name in COLUMN_DOCS:
        return COLUMN_DOCS[name]
    metric = METRICS.get(name)
    return f"{metric.label} ({metric.unit}): {metric.definition}" if metric else None


def source_version(*patterns: str) -> str:
    """Code version of a Python asset: a hash of the files it runs (globs relative to the
    project root), path and content, so any edit to them marks the asset stale."""
    h = hashlib.sha256()
    files = sorted({p for pattern in patterns for p in PROJECT_ROOT.glob(pattern) if p.is_file()})
    for path in files:
        h.update(path.relative_to(PROJECT_ROOT).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def text_version(text: str) -> str:
    """Code version of a SQL asset: a hash of its .sql file text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def md_cell(value: Any, limit: int = PREVIEW_CELL_CHARS) -> str:
    """One value as a markdown table cell: truncated first, then escaped."""
    if value is None:
        return ""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.translate(_MD_ESCAPES)


def markdown_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    head = "| " + " | ".join(md_cell(c) for c in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(md_cell(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position",
        [table],
    ).fetchall()


def table_metadata(
    con: duckdb.DuckDBPyConnection, table: str, pilot: str, *, rows: int = PREVIEW_ROWS
) -> dict[str, Any]:
    """`dagster/column_schema` and a `preview` (markdown) of `table` for `pilot`."""
    cols = table_columns(con, table)
    if not cols:
        return {}
    names = [n for n, _ in cols]
    where = "WHERE pilot = ?" if "pilot" in names else ""
    head = con.execute(
        f'SELECT * FROM "{table}" {where} LIMIT {int(rows)}', [pilot] if where else []
    ).fetchall()
    return {
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=n, type=t, description=column_description(n))
                     for n, t in cols]
        ),
        "preview": dg.MetadataValue.md(markdown_table(names, head)),
    }
