"""The pipeline version printed in every report's provenance."""

from importlib.metadata import PackageNotFoundError, version

try:
    PIPELINE_VERSION = version("stabilis")
except PackageNotFoundError:  # running from a source tree without install
    PIPELINE_VERSION = "0.0.0+source"
