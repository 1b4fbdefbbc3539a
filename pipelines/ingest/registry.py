"""Source kind -> adapter. Each adapter reads one file into Parsed chunks of one table."""

from __future__ import annotations

from pipelines.ingest.arrival_trace import read_arrival_trace
from pipelines.ingest.base import Adapter
from pipelines.ingest.canonical import read_canonical_source
from pipelines.ingest.nvidia_smi import read_nvidia_smi
from pipelines.ingest.otlp import read_otlp_json
from pipelines.ingest.prometheus_api import read_prometheus_api
from pipelines.ingest.prometheus_json import read_prometheus_json
from pipelines.ingest.prometheus_text import read_prometheus_text
from pipelines.ingest.sacct import read_sacct
from pipelines.ingest.tabular import read_tabular

ADAPTERS: dict[str, Adapter] = {
    "canonical": read_canonical_source,
    "tabular": read_tabular,
    "otlp-json": read_otlp_json,
    "prometheus-text": read_prometheus_text,
    "prometheus-json": read_prometheus_json,
    "sacct": read_sacct,
    "nvidia-smi": read_nvidia_smi,
    "arrival-trace": read_arrival_trace,
    # the snapshot a pull saved (`stabilis pull`), read by the prometheus-json adapter
    "prometheus-api": read_prometheus_api,
}
