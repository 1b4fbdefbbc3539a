"""Parity: every SQL model (MODELS) on DuckDB and on Spark (translated) gives the same table.

One simulated pilot of >= 200 k request attempts is built in DuckDB (build_model, MODELS
order) and every table is exported to Parquet. Each model then runs on Spark through the
translator, reading DuckDB's tables as its inputs (so a difference points at that model's
SQL, not at an upstream one), and its result is compared with DuckDB's, order-independent:
exact columns to 1e-9 relative, approximate quantiles (approx_quantile) by rank within
+-5 %. `test_chained_run_matches` also runs the whole chain on Spark from the staging tables.
New `.sql` files registered in MODELS are covered without touching this file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.sql_models import MODELS, build_model
from tests.simulated_pilot import write_simulated_pilot
from tests.spark_session import spark  # noqa: F401  (session fixture)

# the Spark files are scheduled first (tests/conftest.py); the mark names them
pytestmark = pytest.mark.xdist_group("spark")

PILOT = "spark-parity"
SCALE = 0.18  # the demo simulator at this scale yields ~210 k attempts
MIN_ATTEMPTS = 200_000  # smaller data hides bugs (ENGINE.md)
RTOL = 1e-9
ATOL = 1e-12  # floating noise around an exact zero (e.g. 100 * (a - a))
RANK_TOL = 0.05

# Models not compared on Spark, each with its reason. Keep it empty unless a construct truly
# cannot be translated; the lead is told about every entry.
EXCLUDED: dict[str, str] = {}


def build_warehouse(path: Path, scale: float = SCALE) -> int:
    """A simulated pilot straight into the staging tables, then every model; returns the
    number of request attempts."""
    con = duckdb.connect(str(path))
    write_simulated_pilot(con, PILOT, 7, scale)
    for m in MODELS:
        build_model(con, m, PILOT)
    (n,) = con.execute("SELECT count(*) FROM requests").fetchone()
    con.close()
    return int(n)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    from pipelines.engine.spark import STAGING_INPUTS, export_tables

    folder = tmp_path_factory.mktemp("parity")
    db = folder / "warehouse.duckdb"
    attempts = build_warehouse(db)
    assert attempts >= MIN_ATTEMPTS, f"only {attempts} attempts generated"
    con = duckdb.connect(str(db), read_only=True)
    paths = export_tables(con, [*STAGING_INPUTS, *(m.name for m in MODELS)],
                          folder / "parquet", PILOT)
    con.close()
    yield db, paths


@pytest.fixture(scope="module")
def engine(spark, warehouse):  # noqa: F811
    from pipelines.engine.spark import SparkEngine

    eng = SparkEngine(spark)
    eng.register_parquet(warehouse[1])  # every table as DuckDB built it
    eng.register_metric_catalog()
    return eng


# --- comparison ---------------------------------------------------------------------------


def _kinds(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column -> float | exact | json | list, from DuckDB's declared types."""
    out: dict[str, str] = {}
    for name, dtype, scale in con.execute(
        "SELECT column_name, data_type, numeric_scale FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position", [table]
    ).fetchall():
        if dtype in ("DOUBLE", "FLOAT", "REAL") or (dtype.startswith("DECIMAL") and scale):
            out[name] = "float"
        elif dtype == "JSON" or name.endswith("_json"):
            out[name] = "json"
        elif dtype.endswith("[]"):
            out[name] = "list"
        else:
            out[name] = "exact"
    return out


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # element-wise: lists must not become a 2-D array
        out[i] = v
    return out


def _exact(v: object) -> object:
    if isinstance(v, list):
        return tuple(_exact(x) for x in v)
    if isinstance(v, Decimal | float) and v == v and v == int(v):
        return int(v)  # 5, 5.0 and Decimal('5') are the same exact value
    return v


def _column(col: pa.ChunkedArray, kind: str) -> np.ndarray:
    """One column as a numpy array comparable across engines: float columns as float64,
    anything else as exact Python values (timestamps as epoch microseconds, lists as
    tuples, integers as int whatever the engine's integer type), JSON parsed."""
    t = col.type
    if pa.types.is_timestamp(t):
        col = pc.cast(pc.cast(col, pa.timestamp("us")), pa.int64())
    elif kind == "float" and (pa.types.is_integer(t) or pa.types.is_decimal(t)
                              or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    values = col.to_pylist()
    if kind == "json":
        return _objects([None if v is None else json.loads(v) for v in values])
    return _objects([None if v is None else _exact(v) for v in values])


def _sortable(a: np.ndarray, kind: str) -> pd.Series:
    if a.dtype.kind == "f":
        m, e = np.frexp(np.nan_to_num(a, nan=-np.inf))
        # coarse mantissa: rows whose floats differ by engine noise sort the same way
        return pd.Series(np.ldexp(np.round(m * 2**30) / 2**30, e))
    if kind == "json":
        return pd.Series([json.dumps(_rounded(v), sort_keys=True) for v in a])
    return pd.Series(["\x00" if v is None else str(v) for v in a])


def _rounded(v: object) -> object:
    if isinstance(v, float):
        return float(f"{v:.6g}")
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    return v


def _normalise(table: pa.Table, kinds: dict[str, str]) -> pd.DataFrame:
    cols = {c: _column(table.column(c), kinds[c]) for c in kinds}
    keys = [c for c in kinds if kinds[c] != "float" and cols[c].dtype.kind != "f"]
    nums = [c for c in kinds if c not in keys]
    order = pd.DataFrame({c: _sortable(cols[c], kinds[c]) for c in keys + nums})
    idx = order.sort_values(by=keys + nums, kind="stable").index.to_numpy()
    return pd.DataFrame({c: pd.Series(list(cols[c][idx])) if cols[c].dtype == object
                         else pd.Series(cols[c][idx]) for c in kinds})


def _json_close(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def compare(name: str, duck: pa.Table, sprk: pa.Table, kinds: dict[str, str],
            approx: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> list[str]:
    """Differences between DuckDB's and Spark's table (empty when they match)."""
    problems: list[str] = []
    if duck.num_rows != sprk.num_rows:
        return [f"{name}: {duck.num_rows} rows on DuckDB, {sprk.num_rows} on Spark"]
    missing = set(kinds) - set(sprk.column_names)
    if missing:
        return [f"{name}: Spark result lacks columns {sorted(missing)}"]
    d, s = _normalise(duck, kinds), _normalise(sprk.select(list(kinds)), kinds)
    for c, kind in kinds.items():
        a, b = d[c].to_numpy(), s[c].to_numpy()
        if approx and c in approx:
            lo, hi = approx[c]
            ok = (np.isnan(b) & np.isnan(lo)) | ((b >= lo - ATOL) & (b <= hi + ATOL))
        elif a.dtype.kind == "f" and b.dtype.kind == "f":
            tol = RTOL if kind == "float" else 0.0
            ok = (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=tol, atol=ATOL if tol else 0)
        elif kind == "json":
            ok = np.array([_json_close(x, y) for x, y in zip(a, b, strict=True)])
        else:
            ok = np.array([x == y or (x is None and y is None) for x, y in zip(a, b, strict=True)])
        bad = np.flatnonzero(~ok)
        if bad.size:
            i = bad[0]
            problems.append(f"{name}.{c}: {bad.size} of {len(a)} rows differ, e.g. "
                            f"DuckDB {a[i]!r} vs Spark {b[i]!r}")
    return problems


# --- approximate quantiles: Spark's value must lie between DuckDB's exact quantiles at
# q - 5 % and q + 5 % (its rank is within +-5 %) --------------------------------------------


def _approx_columns(sql: str) -> set[str]:
    """Output names whose expression holds an approx_quantile (directly or by a CTE alias)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    return {a.alias for a in tree.find_all(exp.Alias) if a.find(exp.ApproxQuantile)}


def _rank_band(con: duckdb.DuckDBPyConnection, sql: str, shift: float) -> pa.Table:
    import sqlglot
    from sqlglot import exp

    def move(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.ApproxQuantile):
            q = float(node.args["quantile"].name) + shift
            return exp.Anonymous(this="quantile_cont", expressions=[
                node.this, exp.Literal.number(min(max(q, 0.0), 1.0))])
        return node

    moved = sqlglot.parse_one(sql, read="duckdb").transform(move).sql("duckdb")
    return con.execute(moved, {"pilot": PILOT}).to_arrow_table()


# --- tests --------------------------------------------------------------------------------


def test_models_are_all_covered() -> None:
    assert set(EXCLUDED) <= {m.name for m in MODELS}, "EXCLUDED names a model that is gone"
    covered = {m.layer for m in MODELS if m.name not in EXCLUDED}
    assert {"intermediate", "metrics", "topology"} <= covered


@pytest.mark.parametrize("name", [m.name for m in MODELS if m.name not in EXCLUDED])
def test_model_matches_duckdb(name: str, engine, warehouse) -> None:
    from pipelines.sql_models import BY_NAME

    db, _ = warehouse
    model = BY_NAME[name]
    con = duckdb.connect(str(db), read_only=True)
    try:
        kinds = _kinds(con, name)
        duck = con.execute(f'SELECT * FROM "{name}" WHERE pilot = $p',
                           {"p": PILOT}).to_arrow_table()
        approx_cols = _approx_columns(model.sql()) & set(kinds)
        approx = None
        if approx_cols:
            lo = _normalise(_rank_band(con, model.sql(), -RANK_TOL), kinds)
            hi = _normalise(_rank_band(con, model.sql(), +RANK_TOL), kinds)
            approx = {c: (lo[c].to_numpy(), hi[c].to_numpy()) for c in approx_cols}
    finally:
        con.close()
    sprk = engine.run_model(model, PILOT).toArrow()
    assert duck.num_rows > 0 or name in {"metrics_did"}, f"{name}: DuckDB built no rows"
    problems = compare(name, duck, sprk, kinds, approx)
    assert not problems, "\n".join(problems)


# A chain of models each reading Spark's own upstream result (every model is chained in
# production); the lighter ones, to keep the suite's time: each model is compared alone above.
CHAIN = ("int_thresholds", "int_gpu_samples", "hidden_idle_map")


def test_chained_run_matches(spark, warehouse) -> None:  # noqa: F811
    """The engine as production uses it: staging Parquet in, models in MODELS order on Spark,
    each reading Spark's own upstream results (hidden_idle_map reads Spark's
    int_gpu_samples)."""
    from pipelines.engine.spark import STAGING_INPUTS, SparkEngine
    from pipelines.sql_models import BY_NAME

    chain = [m for m in MODELS if m.name in CHAIN]
    assert [m.name for m in chain] == list(CHAIN), "CHAIN must follow MODELS order"
    for m in chain:  # a real chain: every input is staging or an earlier chained model
        assert set(m.deps) <= set(STAGING_INPUTS) | {c.name for c in chain}, m.name
    db, paths = warehouse
    eng = SparkEngine(spark)
    eng.register_parquet({t: paths[t] for t in STAGING_INPUTS})
    results = eng.run(PILOT, [BY_NAME[n] for n in CHAIN])
    con = duckdb.connect(str(db), read_only=True)
    problems: list[str] = []
    try:
        for name, df in results.items():
            duck = con.execute(f'SELECT * FROM "{name}" WHERE pilot = $p',
                               {"p": PILOT}).to_arrow_table()
            problems += compare(name, duck, df.toArrow(), _kinds(con, name))
    finally:
        con.close()
        # the views now hold Spark's results: put DuckDB's back for any later test
        eng.register_parquet({n: paths[n] for n in CHAIN})
    assert set(results) == set(CHAIN)
    assert not problems, "\n".join(problems)
