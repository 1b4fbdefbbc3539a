"""Metrics layer: tables built from sql/metrics/*.sql."""

from assets.sql_factory import layer_assets

metrics_assets = layer_assets("metrics")
