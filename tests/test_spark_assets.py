"""The Dagster SQL assets on the `spark` engine land the same tables as on DuckDB (issue #8).

A small simulated pilot is written into a DuckDB warehouse and a chain of SQL assets is
materialized through Dagster on DuckDB; then a part of it (staging -> intermediate -> a metric
and topology tables, some reading Spark's upstream results, some DuckDB's) again with
`sql_engine: SqlEngine(engine="spark")`, which replaces the pilot's rows with Spark's. The
tables must keep their columns and types and match DuckDB's rows (the parity test's
comparison: exact columns to 1e-9 relative). Every model's SQL is compared on both engines
by tests/test_spark_parity.py; this file tests the asset wiring, on lighter models.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pytest
from dagster_duckdb import DuckDBResource

from assets.sql_factory import sql_asset
from pipelines.partitions import PILOT_PARTITIONS_NAME
from pipelines.resources import SqlEngine
from pipelines.runner import materialized_row_counts
from pipelines.sql_models import BY_NAME, MODELS, build_model
from pipelines.warehouse import duckdb_config
from tests.simulated_pilot import write_simulated_pilot
from tests.spark_session import spark  # noqa: F401  (session fixture)
from tests.table_compare import compare, kinds_of

# the Spark files are scheduled first (tests/conftest.py); the mark names them
pytestmark = pytest.mark.xdist_group("spark")

PILOT = "spark-assets"
OTHER = "other-pilot"  # rows of another pilot that a build must leave alone
SCALE = 0.005  # ~15 k request attempts: the wiring is under test here, not the SQL (parity)
# built on DuckDB first, in MODELS order
DUCK = ("int_thresholds", "int_retried_requests", "int_attempts", "int_gpu_samples",
        "burst_windows", "burst_episodes", "energy_latency_windows", "hidden_idle_map")
# then on Spark: int_gpu_samples feeds a metric and a topology table with Spark's result,
# burst_episodes reads Spark's int_thresholds and DuckDB's burst_windows
SPARK = ("int_thresholds", "int_gpu_samples", "burst_episodes", "energy_latency_windows",
         "hidden_idle_map")


def _materialize(db: Path, engine: SqlEngine, names: tuple[str, ...],
                 **kwargs: object) -> dg.ExecuteInProcessResult:
    inst = dg.DagsterInstance.ephemeral()
    inst.add_dynamic_partitions(PILOT_PARTITIONS_NAME, [PILOT])
    return dg.materialize(
        [sql_asset(BY_NAME[n]) for n in names],
        instance=inst,
        partition_key=PILOT,
        resources={"warehouse": DuckDBResource(database=str(db),
                                               connection_config=duckdb_config(db)),
                   "sql_engine": engine},
        **kwargs,
    )


def _snapshot(db: Path, names: tuple[str, ...]) -> dict[str, tuple[list, pa.Table, int]]:
    """Per table: (columns with types, the pilot's rows, the other pilot's row count)."""
    with duckdb.connect(str(db), read_only=True) as con:
        return {n: (
            con.execute("SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_name = ? ORDER BY ordinal_position", [n]).fetchall(),
            con.execute(f'SELECT * FROM "{n}" WHERE pilot = ?', [PILOT]).to_arrow_table(),
            con.execute(f'SELECT count(*) FROM "{n}" WHERE pilot = ?', [OTHER]).fetchone()[0],
        ) for n in names}


@pytest.fixture(scope="module")
def duck_built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    """The warehouse with DUCK built on DuckDB through Dagster, plus another pilot's rows in
    every table; yields it and the snapshot."""
    db = tmp_path_factory.mktemp("spark_assets") / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        write_simulated_pilot(con, PILOT, 11, SCALE)
    result = _materialize(db, SqlEngine(), DUCK)
    assert result.success
    with duckdb.connect(str(db)) as con:
        for n in DUCK:
            con.execute(f"INSERT INTO \"{n}\" SELECT * REPLACE ('{OTHER}' AS pilot) "
                        f'FROM "{n}" WHERE pilot = ?', [PILOT])
    yield db, _snapshot(db, DUCK)


def test_spark_assets_land_the_duckdb_tables(spark, duck_built) -> None:  # noqa: F811
    db, duck = duck_built
    result = _materialize(db, SqlEngine(engine="spark"), SPARK)
    assert result.success
    mats = [e.event_specific_data.materialization
            for e in result.get_asset_materialization_events()]
    assert {m.asset_key.to_user_string(): m.metadata["engine"].value for m in mats} == (
        dict.fromkeys(SPARK, "spark"))
    counts = materialized_row_counts(result)
    sprk = _snapshot(db, SPARK)
    problems: list[str] = []
    with duckdb.connect(str(db), read_only=True) as con:
        for n in SPARK:
            (d_cols, d_rows, d_other), (s_cols, s_rows, s_other) = duck[n], sprk[n]
            assert s_cols == d_cols, f"{n}: columns/types changed on Spark"
            assert s_other == d_other > 0, f"{n}: another pilot's rows were touched"
            assert counts[n] == s_rows.num_rows, n
            assert d_rows.num_rows > 0, f"{n}: DuckDB built no rows"
            problems += compare(n, d_rows, s_rows, kinds_of(con, n))
    assert not problems, "\n".join(problems)
    # the exchanged Parquet is removed with the run (one folder per run under <db>.tmp/spark)
    exchanged = db.parent / (db.name + ".tmp") / "spark"
    assert exchanged.is_dir() and not any(exchanged.iterdir())


def test_spark_session_is_created_once(spark) -> None:  # noqa: F811
    a, b = SqlEngine(engine="spark"), SqlEngine(engine="spark")
    assert a.spark_session() is b.spark_session() is spark
    with pytest.raises(ValueError, match="duckdb"):
        SqlEngine().spark_session()


def test_failed_spark_step_leaves_the_table_as_it_was(spark, duck_built,  # noqa: F811
                                                      tmp_path: Path) -> None:
    db, _ = duck_built
    before = _snapshot(db, ("hidden_idle_map",))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("the exchange folder cannot be created under a file")
    result = _materialize(db, SqlEngine(engine="spark", exchange_dir=str(blocker)),
                          ("hidden_idle_map",), raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    info = failure.step_failure_data.user_failure_data
    assert info.metadata["engine"].value == "spark"
    assert info.metadata["source"].value == "sql/topology/hidden_idle_map.sql"
    assert PILOT in info.description
    after = _snapshot(db, ("hidden_idle_map",))
    assert after["hidden_idle_map"][1].equals(before["hidden_idle_map"][1])


# --- no Spark needed: the Parquet hook of build_model and the resource's settings ---------


def _thresholds_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    from pipelines.config import DEFAULT_THRESHOLDS
    from pipelines.warehouse import ensure_schema

    con = duckdb.connect(str(path))
    ensure_schema(con)
    con.executemany("INSERT INTO thresholds VALUES (?, ?, ?)",
                    [[PILOT, k, float(x)] for k, x in DEFAULT_THRESHOLDS.items()])
    build_model(con, "int_thresholds", PILOT)
    return con


def test_parquet_result_replaces_the_pilot_rows_with_the_model_types(tmp_path: Path) -> None:
    con = _thresholds_warehouse(tmp_path / "w.duckdb")
    before = con.execute("SELECT * FROM int_thresholds").fetchall()
    types = con.execute("DESCRIBE int_thresholds").fetchall()
    # another engine's result: same rows, looser types (all DOUBLE -> VARCHAR here)
    out = tmp_path / "result"
    out.mkdir()
    con.execute("COPY (SELECT * REPLACE (CAST(burst_factor AS VARCHAR) AS burst_factor) "
                f"FROM int_thresholds) TO '{out / 'part-0.parquet'}' (FORMAT parquet)")
    assert build_model(con, "int_thresholds", PILOT, parquet=out) == 1
    assert build_model(con, "int_thresholds", PILOT, parquet=out) == 1  # idempotent
    assert con.execute("SELECT * FROM int_thresholds").fetchall() == before
    assert con.execute("DESCRIBE int_thresholds").fetchall() == types


@pytest.mark.parametrize("bad", [
    "SELECT * EXCLUDE (burst_factor) FROM int_thresholds",  # a column missing
    "SELECT * REPLACE ('x' AS burst_factor) FROM int_thresholds",  # not castable
])
def test_bad_parquet_result_leaves_the_table_as_it_was(tmp_path: Path, bad: str) -> None:
    con = _thresholds_warehouse(tmp_path / "w.duckdb")
    before = con.execute("SELECT * FROM int_thresholds").fetchall()
    path = tmp_path / "bad.parquet"
    con.execute(f"COPY ({bad}) TO '{path}' (FORMAT parquet)")
    with pytest.raises((ValueError, duckdb.Error)):
        build_model(con, "int_thresholds", PILOT, parquet=path)
    assert con.execute("SELECT * FROM int_thresholds").fetchall() == before


def test_engine_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("STABILIS_SQL_ENGINE", "STABILIS_SPARK_MASTER", "STABILIS_SPARK_REMOTE",
                "STABILIS_SPARK_EXCHANGE_DIR"):
        monkeypatch.delenv(var, raising=False)
    assert SqlEngine.from_env().engine == "duckdb"
    monkeypatch.setenv("STABILIS_SQL_ENGINE", "spark")
    monkeypatch.setenv("STABILIS_SPARK_REMOTE", "sc://spark.internal:15002")
    eng = SqlEngine.from_env()
    assert (eng.engine, eng.spark_remote, eng.spark_master) == (
        "spark", "sc://spark.internal:15002", "local[2]")
    monkeypatch.setenv("STABILIS_SQL_ENGINE", "trino")
    with pytest.raises(ValueError, match="STABILIS_SQL_ENGINE"):
        SqlEngine.from_env()


def test_models_read_only_their_deps() -> None:
    """The Spark path registers only a model's deps (and the metric catalog): a table read
    but not declared would be missing there (and mis-ordered in Dagster)."""
    sqlglot = pytest.importorskip("sqlglot")
    from sqlglot import exp

    for m in MODELS:
        tree = sqlglot.parse_one(m.sql(), read="duckdb")
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        read = {t.name for t in tree.find_all(exp.Table)} - ctes
        assert read - {"metric_catalog"} == set(m.deps), m.name
