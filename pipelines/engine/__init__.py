"""The same SQL on another engine: DuckDB -> Spark translation (SQLGlot + our fix-ups) and a
PySpark runner. Needs the optional extra `spark` (pyspark, sqlglot); DuckDB stays default."""
