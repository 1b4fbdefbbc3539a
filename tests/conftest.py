"""Shared test setup: the anonymization secret every pilot.yaml in the tests names."""

import os

# Ingestion refuses to run without the pilot secret (observer-only); tests use a fixed one.
os.environ.setdefault("STABILIS_SECRET", "stabilis-test-secret-not-for-real-pilots")
