"""Pandera (polars) models of the canonical tables and frame validation."""

from schemas.arrivals import ArrivalsSchema
from schemas.jobs import JobsSchema
from schemas.quarantine import QuarantineSchema
from schemas.requests import RequestsSchema
from schemas.samples import SamplesSchema
from schemas.validate import FrameSchemaError, table_columns, validate_frame

__all__ = [
    "ArrivalsSchema",
    "FrameSchemaError",
    "JobsSchema",
    "QuarantineSchema",
    "RequestsSchema",
    "SamplesSchema",
    "table_columns",
    "validate_frame",
]
