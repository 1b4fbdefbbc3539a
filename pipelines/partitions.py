"""Pilots are dynamic partitions: each pilot folder that lands becomes one partition."""

import dagster as dg

PILOT_PARTITIONS_NAME = "pilot"
pilot_partitions = dg.DynamicPartitionsDefinition(name=PILOT_PARTITIONS_NAME)
