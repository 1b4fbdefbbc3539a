"""Shared test setup: the anonymization secret every pilot.yaml in the tests names."""

import os

# Ingestion refuses to run without the pilot secret (observer-only); tests use a fixed one.
os.environ.setdefault("STABILIS_SECRET", "stabilis-test-secret-not-for-real-pilots")


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ARG001
    """Spark files first: the suite runs with `--dist loadfile` (a module's fixtures are built
    once, by the one worker that runs the module), and these are the longest files, so
    starting them last would leave one worker running alone at the end of the suite.
    (`--dist loadgroup` does not group with pytest 9.2 + xdist 3.8: every test went its own
    way and module fixtures were built on both workers.)"""
    def is_spark(item) -> bool:
        return any(m.args == ("spark",) for m in item.iter_markers("xdist_group"))

    items.sort(key=lambda item: not is_spark(item))  # stable: order kept within each part
