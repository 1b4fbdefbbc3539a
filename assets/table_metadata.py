"""Materialization metadata that makes the Dagster UI a control room for a warehouse table.

Column schema from information_schema (what the table is after this run, not what the code
meant it to be) and a small markdown preview of the pilot's first rows.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import duckdb

OWNERS = ["team:stabilis"]
PREVIEW_ROWS = 5
PREVIEW_CELL_CHARS = 40
_MD_ESCAPES = str.maketrans(
    {c: "\\" + c for c in "\\|*_`[]<>#"} | {"\n": " ", "\r": " ", "\t": " "}
)


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
            columns=[dg.TableColumn(name=n, type=t) for n, t in cols]
        ),
        "preview": dg.MetadataValue.md(markdown_table(names, head)),
    }
