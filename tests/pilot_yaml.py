"""A minimal pilot.yaml for ingest tests: one day of baseline, one of validation, scope all,
a P0 target and the named sources; the secret comes from STABILIS_SECRET."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def write_pilot_yaml(folder: Path, pilot: str, sources: list[dict[str, Any]], *,
                     title: str = "t", e2e_ms: int = 100, timeout_ms: int = 1000) -> None:
    doc = {
        "pilot": pilot, "title": title, "timezone": "UTC",
        "phases": {"baseline": {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"},
                   "validation": {"start": "2026-03-03T00:00:00Z",
                                  "end": "2026-03-04T00:00:00Z"}},
        "scope": "all", "sla": {"P0": {"e2e_ms": e2e_ms}}, "timeout_ms": timeout_ms,
        "sources": sources, "anonymization": {"secret_env": "STABILIS_SECRET"},
    }
    (folder / "pilot.yaml").write_text(yaml.safe_dump(doc))
