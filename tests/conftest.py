"""Shared test setup: the anonymization secret every pilot.yaml in the tests names."""

import os

# Ingestion refuses to run without the pilot secret (observer-only); tests use a fixed one.
os.environ.setdefault("STABILIS_SECRET", "stabilis-test-secret-not-for-real-pilots")


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ARG001
    """Spark tests first: they run serially on one xdist worker (`--dist loadgroup`, one JVM),
    so starting them last would leave that worker running alone at the end of the suite."""
    def is_spark(item) -> bool:
        return any(m.args == ("spark",) for m in item.iter_markers("xdist_group"))

    items.sort(key=lambda item: not is_spark(item))  # stable: order kept within each part
