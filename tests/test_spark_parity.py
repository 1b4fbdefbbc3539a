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

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipelines.sql_models import MODELS, build_model
from tests.simulated_pilot import write_simulated_pilot
from tests.spark_session import spark  # noqa: F401  (session fixture)
from tests.table_compare import compare, kinds_of

# the Spark files are scheduled first (tests/conftest.py); the mark names them
pytestmark = pytest.mark.xdist_group("spark")

PILOT = "spark-parity"
SCALE = 0.18  # the demo simulator at this scale yields ~210 k attempts
MIN_ATTEMPTS = 200_000  # smaller data hides bugs (ENGINE.md)
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
        kinds = kinds_of(con, name)
        duck = con.execute(f'SELECT * FROM "{name}" WHERE pilot = $p',
                           {"p": PILOT}).to_arrow_table()
        approx = _approx_columns(model.sql()) & set(kinds)
        band = None
        if approx:
            band = (_rank_band(con, model.sql(), -RANK_TOL),
                    _rank_band(con, model.sql(), +RANK_TOL))
    finally:
        con.close()
    sprk = engine.run_model(model, PILOT).toArrow()
    # shared-CTE steps (pipelines/engine/shared_ctes.py) are views of one model's run: a
    # classic session drops them once the result is analysed, so the result above was read
    # without them and no later query can read them
    left = [t.name for t in engine.spark.catalog.listTables() if t.name.startswith("__cte_")]
    assert left == [], f"{name}: step views outlive the model: {left}"
    assert duck.num_rows > 0 or name in {"metrics_did"}, f"{name}: DuckDB built no rows"
    problems = compare(name, duck, sprk, kinds, band, approx)
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
            problems += compare(name, duck, df.toArrow(), kinds_of(con, name))
    finally:
        con.close()
        # the views now hold Spark's results: put DuckDB's back for any later test
        eng.register_parquet({n: paths[n] for n in CHAIN})
    assert set(results) == set(CHAIN)
    assert not problems, "\n".join(problems)

