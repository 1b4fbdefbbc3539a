"""Intermediate layer: tables built from sql/intermediate/*.sql."""

from assets.sql_factory import layer_assets

intermediate_assets = layer_assets("intermediate")
