"""The parity comparator (tests/table_compare.py): what it takes as equal and what it
reports, on both of its paths (Arrow arrays and Python values)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pyarrow as pa

from tests.table_compare import compare, kind

KINDS = {"k": "exact", "n": "exact", "ts": "exact", "x": "float", "j": "json", "l": "list"}


def table(**cols: list) -> pa.Table:
    return pa.table(cols)


def base() -> dict[str, list]:
    return {
        "k": ["a", "b", None, "d"],
        "n": [1, 2, 3, None],
        "ts": [datetime(2026, 1, 1, 0, 0, 0, i) for i in (1, 2, 3, 4)],
        "x": [0.5, float("nan"), 1e-13, 3.0],
        "j": ['{"p": 1.0}', None, '{"p": [1, 2]}', "{}"],
        "l": [["a"], [], None, ["b", "c"]],
    }


def test_equal_tables_in_another_row_order_match() -> None:
    a = table(**base())
    b = a.take([3, 1, 0, 2])
    assert compare("t", a, b, KINDS) == []


def test_integral_numbers_match_across_types_and_fractions_do_not() -> None:
    d = base()
    s = dict(d, n=[Decimal("1"), Decimal("2.0"), Decimal("3"), None])  # Spark's decimals
    assert compare("t", table(**d), table(**s), KINDS) == []
    s = dict(d, n=[1.0, 2.0, 3.5, None])  # a fraction: the Python path, and a difference
    (problem,) = compare("t", table(**d), table(**s), KINDS)
    assert problem.startswith("t.n: 1 of 4 rows differ")


def test_each_kind_of_difference_is_reported() -> None:
    d = base()
    cases = {
        "k": dict(d, k=["a", "b", None, "e"]),
        "ts": dict(d, ts=[*d["ts"][:3], datetime(2026, 1, 1, 0, 0, 0, 5)]),
        "x": dict(d, x=[0.5, float("nan"), 1e-13, 3.0 * (1 + 1e-6)]),
        "j": dict(d, j=['{"p": 1.1}', None, '{"p": [1, 2]}', "{}"]),
        "l": dict(d, l=[["a"], [], None, ["c", "b"]]),
    }
    for col, s in cases.items():
        problems = compare("t", table(**d), table(**s), KINDS)
        assert problems and all(p.startswith(f"t.{col}:") for p in problems), (col, problems)


def test_null_differs_from_a_value_and_floats_match_within_tolerance() -> None:
    d = base()
    s = dict(d, n=[1, 2, None, None])
    assert compare("t", table(**d), table(**s), KINDS)
    s = dict(d, x=[0.5 * (1 + 1e-12), float("nan"), 0.0, 3.0])  # noise, and ~0 within ATOL
    assert compare("t", table(**d), table(**s), KINDS) == []


def test_row_count_and_missing_columns_are_reported() -> None:
    d = table(**base())
    assert compare("t", d, d.slice(0, 3), KINDS) == ["t: 4 rows on DuckDB, 3 on Spark"]
    assert compare("t", d, d.drop_columns(["x"]), KINDS) == [
        "t: Spark result lacks columns ['x']"]


def test_approximate_column_is_checked_against_its_band() -> None:
    kinds = {"g": "exact", "q": "float"}
    duck = table(g=["a", "b"], q=[10.0, 20.0])
    band = (table(g=["a", "b"], q=[9.0, 19.0]), table(g=["a", "b"], q=[11.0, 21.0]))
    inside = table(g=["b", "a"], q=[20.9, 9.5])
    assert compare("t", duck, inside, kinds, band, {"q"}) == []
    outside = table(g=["a", "b"], q=[10.0, 21.5])
    assert compare("t", duck, outside, kinds, band, {"q"}) == [
        "t.q: 1 of 2 rows differ, e.g. DuckDB 20.0 vs Spark 21.5"]


def test_column_kinds_follow_duckdb_types() -> None:
    assert [kind("x", t) for t in ("DOUBLE", "DECIMAL(18,3)", "DECIMAL(18,0)", "BIGINT",
                                   "VARCHAR[]", "JSON")] == [
        "float", "float", "exact", "exact", "list", "json"]
    assert kind("detail_json", "VARCHAR") == "json"
