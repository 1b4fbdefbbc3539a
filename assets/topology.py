"""Topology layer: tables built from sql/topology/*.sql."""

from assets.sql_factory import layer_assets

topology_assets = layer_assets("topology")
