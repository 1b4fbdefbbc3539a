"""Shared CTEs as steps (pipelines/engine/shared_ctes.py): which CTEs become steps, what each
step and the final query read, and that running the steps as tables gives the statement's
result. Checked on DuckDB (same SQL, no Spark needed); tests/test_spark_parity.py runs every
model through them on Spark."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from pipelines.engine.shared_ctes import split_shared_ctes

PREFIX = "__cte_t_"


def split(sql: str):
    return split_shared_ctes(sqlglot.parse_one(sql, read="duckdb"), PREFIX)


def tables_read(tree: exp.Expression) -> set[str]:
    return {t.name for t in tree.find_all(exp.Table)}


def cte_names(tree: exp.Expression) -> list[str]:
    w = tree.args.get("with_")
    return [c.alias_or_name for c in w.expressions] if w else []


@pytest.fixture()
def con():
    c = duckdb.connect()
    c.execute("CREATE TABLE r AS SELECT i, i % 3 AS g FROM range(30) t(i)")
    yield c
    c.close()


def run_steps(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    """The statement's rows computed as the engine does: each step a table, then the final
    query."""
    steps = split(sql)
    for view, query in steps.shared:
        con.execute(f"CREATE TEMP TABLE {view} AS {query.sql('duckdb')}")
    return sorted(con.execute(steps.final.sql("duckdb")).fetchall())


def test_a_cte_read_once_stays_a_cte() -> None:
    sql = "WITH a AS (SELECT * FROM r) SELECT * FROM a"
    steps = split(sql)
    assert steps.shared == []
    assert steps.final.sql("duckdb") == sqlglot.parse_one(sql, read="duckdb").sql("duckdb")


def test_a_cte_read_twice_becomes_a_step_read_under_its_name(con) -> None:
    sql = """WITH a AS (SELECT g, count(*) AS n FROM r GROUP BY g),
                  b AS (SELECT g FROM r WHERE i < 5)
             SELECT a.g, a.n, x.n AS n2 FROM a JOIN a AS x USING (g) JOIN b USING (g)"""
    steps = split(sql)
    assert [v for v, _ in steps.shared] == [f"{PREFIX}a"]
    assert cte_names(steps.final) == ["b"]  # read once: still a CTE
    assert tables_read(steps.final) == {f"{PREFIX}a", "b", "r"}
    # the unaliased reference keeps its name as the alias, so `a.g` still resolves
    assert f"{PREFIX}a AS a" in steps.final.sql("duckdb")
    assert run_steps(con, sql) == sorted(con.execute(sql).fetchall())


def test_a_step_takes_the_ctes_it_needs_and_reads_earlier_steps(con) -> None:
    sql = """WITH base AS (SELECT i, g FROM r WHERE i % 2 = 0),
                  per_g AS (SELECT g, sum(i) AS s FROM base GROUP BY g),
                  top (g, s) AS (SELECT g, s FROM per_g WHERE s > (SELECT min(s) FROM per_g))
             SELECT * FROM top UNION ALL SELECT g, s FROM top WHERE g = 1"""
    steps = split(sql)
    assert [v for v, _ in steps.shared] == [f"{PREFIX}per_g", f"{PREFIX}top"]
    per_g, top = (q for _, q in steps.shared)
    assert cte_names(per_g) == ["base", "per_g"]  # base is read once: it comes along
    assert cte_names(top) == ["base", "top"]  # per_g is a step now: read as its table
    assert f"{PREFIX}per_g" in tables_read(top)
    assert run_steps(con, sql) == sorted(con.execute(sql).fetchall())


def test_a_name_read_before_its_cte_is_the_table() -> None:
    # `r` inside the first CTE is the table; only the two reads after the CTE r count
    sql = """WITH x AS (SELECT * FROM r), r AS (SELECT * FROM x WHERE i > 3)
             SELECT * FROM r JOIN r AS r2 USING (i)"""
    steps = split(sql)
    assert [v for v, _ in steps.shared] == [f"{PREFIX}r"]
    (_, step), = steps.shared
    assert "r" in tables_read(step.args["with_"].expressions[0])  # x still reads the table


def test_recursive_or_nested_withs_are_left_to_the_engine() -> None:
    for sql in ("WITH RECURSIVE a AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM a "
                "WHERE n < 3) SELECT * FROM a JOIN a AS b USING (n)",
                "WITH a AS (SELECT * FROM r) SELECT * FROM a JOIN (WITH a AS (SELECT 1 AS i) "
                "SELECT * FROM a) b USING (i) JOIN a AS c USING (i)",
                "SELECT * FROM r"):
        assert split(sql).shared == []


def test_a_cte_of_small_tables_only_is_recomputed_where_it_is_read(con) -> None:
    # `th` reads a pilot's settings only: cheaper inline than as a step of its own; `big`
    # reads `th` and the large table, and is shared: a step that takes `th` along
    con.execute("CREATE TABLE thresholds AS SELECT 10 AS cut")
    sql = """WITH th AS (SELECT cut FROM thresholds),
                  big AS (SELECT g, count(*) AS n FROM r, th WHERE i < th.cut GROUP BY g)
             SELECT b.g, b.n, th.cut FROM big b JOIN big b2 USING (g) CROSS JOIN th"""
    steps = split_shared_ctes(sqlglot.parse_one(sql, read="duckdb"), PREFIX,
                              frozenset({"THRESHOLDS"}))
    assert [v for v, _ in steps.shared] == [f"{PREFIX}big"]
    assert cte_names(steps.shared[0][1]) == ["th", "big"]
    assert cte_names(steps.final) == ["th"]
    for view, query in steps.shared:
        con.execute(f"CREATE TEMP TABLE {view} AS {query.sql('duckdb')}")
    assert sorted(con.execute(steps.final.sql("duckdb")).fetchall()) == sorted(
        con.execute(sql).fetchall())
