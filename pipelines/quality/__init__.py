"""Data-quality gates over the warehouse (Dagster-free; assets/checks.py wires them)."""
