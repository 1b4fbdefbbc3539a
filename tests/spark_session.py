"""One local SparkSession for the Spark tests (session-scoped fixture `spark`).

Skips with a reason when pyspark or sqlglot (the optional extra `spark`) or Java is missing;
otherwise the session is started once and shared by tests/test_spark_*.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest


def _missing() -> str | None:
    try:
        import pyspark  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError as e:
        return f"the Spark extra is not installed ({e.name}): pip install -e '.[spark]'"
    if shutil.which("java") is None:
        return "no java on PATH: PySpark needs a Java 17+ runtime"
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from pipelines.engine.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()
