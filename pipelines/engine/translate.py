"""Translate one of our DuckDB-dialect `.sql` files to Spark SQL: SQLGlot, then our fix-ups.

    translate(sql, pilot="demo-cluster-a")            # Spark SQL text
    translate_model(BY_NAME["int_attempts"], pilot)   # the same for a registered model
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

import sqlglot
from sqlglot import exp

from pipelines.engine.fixups import UntranslatableSQL, apply_fixups
from pipelines.engine.shared_ctes import split_shared_ctes
from pipelines.sql_models import SqlModel
from pipelines.warehouse import SQL_DIR

STORAGE_CLAUSE = re.compile(r"\bUSING\s+COMPRESSION\s+\w+", re.IGNORECASE)


@cache
def staging_list_columns() -> frozenset[str]:
    """Names of the list-typed (VARCHAR[]) columns of the staging DDL: len()/length() of
    these is an element count (fixups.fix_list_length)."""
    names: set[str] = set()
    for ddl in sorted((SQL_DIR / "staging").glob("*.sql")):
        # SQLGlot does not know DuckDB's per-column storage clause (it says nothing of types)
        text = STORAGE_CLAUSE.sub("", ddl.read_text(encoding="utf-8"))
        for stmt in sqlglot.parse(text, read="duckdb"):
            for col in (stmt.find_all(exp.ColumnDef) if stmt else ()):
                kind = col.args.get("kind")
                if kind is not None and kind.is_type(exp.DataType.Type.ARRAY):
                    names.add(col.name)
    return frozenset(names)


def to_spark_tree(
    sql: str, pilot: str | None = None, list_columns: Iterable[str] = ()
) -> exp.Expression:
    """Parse DuckDB SQL (one statement) and apply the fix-up layer; returns the tree."""
    statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    if len(statements) != 1:
        raise UntranslatableSQL(f"expected one SQL statement, got {len(statements)}")
    lists = staging_list_columns() | frozenset(list_columns)
    return apply_fixups(statements[0], pilot=pilot, list_columns=lists)


def translate(
    sql: str, pilot: str | None = None, *, list_columns: Iterable[str] = (),
    pretty: bool = False,
) -> str:
    """DuckDB SQL -> Spark SQL. `pilot` replaces the `$pilot` parameter; `list_columns` adds
    list-typed column names to the staging ones (for len() of a list)."""
    return _spark_sql(to_spark_tree(sql.strip().rstrip(";"), pilot, list_columns), pretty)


def _spark_sql(tree: exp.Expression, pretty: bool = False) -> str:
    # unsupported="raise": SQLGlot must not emit SQL it knows Spark cannot run
    return tree.sql(dialect="spark", pretty=pretty, unsupported_level=sqlglot.ErrorLevel.RAISE)


def translate_steps(
    sql: str, pilot: str | None = None, *, list_columns: Iterable[str] = (),
    view_prefix: str = "__cte_", small: frozenset[str] = frozenset(),
) -> tuple[list[tuple[str, str]], str]:
    """translate(...) as (view, Spark SQL) steps to materialize in order, then the query that
    reads them: each CTE read more than once, and reading more than the `small` tables, is
    one step (shared_ctes.py)."""
    tree = to_spark_tree(sql.strip().rstrip(";"), pilot, list_columns)
    steps = split_shared_ctes(tree, view_prefix, small)
    return [(v, _spark_sql(q)) for v, q in steps.shared], _spark_sql(steps.final)


def translate_model(
    model: SqlModel, pilot: str, *, list_columns: Iterable[str] = (), pretty: bool = False
) -> str:
    return translate(model.sql(), pilot, list_columns=list_columns, pretty=pretty)


__all__ = ["UntranslatableSQL", "staging_list_columns", "to_spark_tree", "translate",
           "translate_model", "translate_steps"]
