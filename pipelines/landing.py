"""The landing folder: which pilot folders are there, are they valid, did their files change.

Dagster-free, so the landing sensor stays a thin wrapper and this logic is testable alone.

A pilot is fingerprinted by its pilot.yaml plus every file its sources match. Checking is
cheap on purpose (a sensor runs every few seconds): a file whose size and mtime equal the
previous scan keeps its recorded sha256; only new or touched files are hashed again, and a
touch that leaves the content as it was does not count as a change.

A live source (`prometheus-api`) has no files of its own: its files are the snapshot its
last pull saved (`pulled/manifest.json` and the responses), so a pilot.yaml naming only a
Prometheus server is a pilot like any other, and a pull that changes the snapshot (`stabilis
pull`, a nightly `--since` from cron) re-runs it like a changed file.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipelines.anonymize import AnonymizationError, secret_from_env
from pipelines.config import PILOT_FILE, SLUG_RE, PilotConfigError, load_pilot

CURSOR_VERSION = 1
# Files touched this recently mean a copy may still be in progress: wait for the next scan.
DEFAULT_SETTLE_S = 5.0
# Names of in-flight copies: copy as `.name` or `name.tmp`, then rename (atomic on one disk).
IGNORED_PREFIXES = (".", "_")
IGNORED_SUFFIXES = (".tmp", ".partial", ".part")

# (size, mtime_ns, sha256) of one file, keyed by its path relative to the pilot folder
Stamp = tuple[int, int, str]


@dataclass(frozen=True)
class PilotState:
    """What one scan found in one landing sub-folder."""

    folder: str
    status: Literal["ready", "invalid", "settling"]
    files: dict[str, Stamp] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    secret_env: str | None = None  # pilot.yaml anonymization.secret_env (ready pilots)

    @property
    def digest(self) -> str:
        """The landing fingerprint: equal digests, equal inputs."""
        return fingerprint((rel, stamp[2]) for rel, stamp in self.files.items())


def fingerprint(files: Iterable[tuple[str, str]]) -> str:
    """One sha256 over (path relative to the pilot folder, content sha256) pairs, in path
    order. The sensor computes it from the files, the staging asset from ingest_log: it is
    the data version of the pilot's landing (and so of its staging tables)."""
    h = hashlib.sha256()
    for rel, sha in sorted(set(files)):
        h.update(f"{rel}\0{sha}\n".encode())
    return h.hexdigest()


@dataclass
class Cursor:
    """The sensor cursor: per pilot, its last digest, file stamps and a run sequence."""

    pilots: dict[str, dict[str, Any]] = field(default_factory=dict)
    # per pilot folder, what the UI was last told (its state and data version), and the
    # problems the landing check last reported: nothing unchanged is reported again
    reported: dict[str, dict[str, Any]] = field(default_factory=dict)
    check: list[str] | None = None

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        try:
            doc = json.loads(text)
        except ValueError:
            return cls()  # unreadable cursor: start over (worst case one re-run per pilot)
        if not isinstance(doc, dict) or doc.get("v") != CURSOR_VERSION:
            return cls()
        return cls(pilots=dict(doc.get("pilots", {})), reported=dict(doc.get("reported", {})),
                   check=doc.get("check"))

    def dumps(self) -> str:
        return json.dumps(
            {"v": CURSOR_VERSION, "pilots": self.pilots, "reported": self.reported,
             "check": self.check},
            sort_keys=True,
        )

    def stamps(self, pilot: str) -> dict[str, Stamp]:
        entry = self.pilots.get(pilot) or {}
        return {k: (int(v[0]), int(v[1]), str(v[2])) for k, v in entry.get("files", {}).items()}

    def digest(self, pilot: str) -> str | None:
        entry = self.pilots.get(pilot)
        return entry.get("digest") if entry else None

    def pending(self, pilot: str) -> bool:
        """The pilot was seen ready but not run (e.g. its secret was unset): look again."""
        return bool((self.pilots.get(pilot) or {}).get("pending"))

    def record(self, state: PilotState, *, bump: bool, pending: bool = False) -> int:
        """Remember `state`; return the pilot's run sequence (bumped when a run is asked).

        `pending`: the pilot could not be run; its file stamps are kept (no re-hash next
        tick) but not its digest as done, so the next tick looks at it again."""
        old = self.pilots.get(state.folder) or {}
        seq = int(old.get("seq", 0)) + (1 if bump else 0)
        entry: dict[str, Any] = {
            "digest": old.get("digest") if pending else state.digest,
            "files": {k: list(v) for k, v in state.files.items()},
            "seq": seq,
        }
        if pending:
            entry["pending"] = True
        self.pilots[state.folder] = entry
        return seq


def is_candidate(entry: Path) -> bool:
    name = entry.name
    return (
        entry.is_dir()
        and not name.startswith(IGNORED_PREFIXES)
        and not name.endswith(IGNORED_SUFFIXES)
    )


def pilot_folders(landing: Path) -> list[Path]:
    """Candidate pilot folders of `landing`, sorted; none when the folder does not exist."""
    if not landing.is_dir():
        return []
    return sorted(p for p in landing.iterdir() if is_candidate(p))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def stamp_files(
    root: Path, files: Iterable[Path], previous: Mapping[str, Stamp]
) -> dict[str, Stamp]:
    """Stamp every file; hash only those whose size or mtime differ from `previous`."""
    out: dict[str, Stamp] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        st = path.stat()
        old = previous.get(rel)
        if old is not None and old[0] == st.st_size and old[1] == st.st_mtime_ns:
            out[rel] = old
        else:
            out[rel] = (st.st_size, st.st_mtime_ns, sha256_file(path))
    return out


def newest_mtime(folder: Path) -> float:
    """Newest mtime of the folder, its sub-folders and files (a copy in flight is recent)."""
    newest = folder.stat().st_mtime
    for p in folder.rglob("*"):
        try:
            newest = max(newest, p.stat().st_mtime)
        except FileNotFoundError:  # removed while we walked: the next scan sees the result
            continue
    return newest


def inspect_pilot(
    folder: Path,
    previous: Mapping[str, Stamp],
    *,
    now: float | None = None,
    settle_s: float = DEFAULT_SETTLE_S,
) -> PilotState:
    """Validate one landing sub-folder and fingerprint its inputs. Never raises on bad input."""
    name = folder.name
    if not SLUG_RE.fullmatch(name):
        return PilotState(
            name,
            "invalid",
            problems=(f"{name}: folder name is not a pilot slug ([a-z0-9][a-z0-9-]{{0,62}})",),
        )
    if not (folder / PILOT_FILE).is_file():
        return PilotState(name, "invalid", problems=(f"{name}: no {PILOT_FILE} in the folder",))
    now = time.time() if now is None else now
    try:
        if now - newest_mtime(folder) < settle_s:
            return PilotState(name, "settling", problems=(f"{name}: files still changing",))
        cfg = load_pilot(folder)
    except PilotConfigError as e:
        return PilotState(
            name, "invalid", problems=tuple(f"{name}: {p}" for p in e.problems)
        )
    except OSError as e:
        return PilotState(name, "invalid", problems=(f"{name}: cannot read: {e}",))
    if cfg.pilot != name:
        return PilotState(
            name,
            "invalid",
            problems=(
                f"{name}: pilot.yaml says `pilot: {cfg.pilot}`, but the folder is {name!r}; "
                "rename one so they match",
            ),
        )
    files = {folder / PILOT_FILE}
    for i in range(len(cfg.sources)):
        files.update(cfg.source_files(i))
    root = folder.resolve()
    try:
        stamps = stamp_files(root, sorted(p.resolve() for p in files), previous)
    except OSError as e:  # a file vanished between glob and read: try again next scan
        return PilotState(name, "settling", problems=(f"{name}: {e}",))
    return PilotState(name, "ready", files=stamps, secret_env=cfg.anonymization.secret_env)


def missing_secret(state: PilotState) -> str | None:
    """Why a ready pilot cannot run in this process: the secret variable it names is unset."""
    if state.secret_env is None:
        return None
    try:
        secret_from_env(state.secret_env)
    except AnonymizationError as e:
        return (f"{state.folder}: {e}. The sensor and its runs read it from the environment "
                "of the Dagster code server: export it before `dagster dev`, or add it to .env "
                "next to workspace.yaml and reload the code location")
    return None


def problems_of(state: PilotState) -> list[str]:
    """Every reason the pilot cannot run now (empty: it can)."""
    if state.status == "invalid":
        return list(state.problems)
    problem = missing_secret(state) if state.status == "ready" else None
    return [problem] if problem else []


@dataclass(frozen=True)
class ScanResult:
    new: list[PilotState]  # ready, never run by the cursor
    changed: list[PilotState]  # ready, digest differs from the cursor's, or pending
    unchanged: list[PilotState]  # ready, same digest (stamps may still have been refreshed)
    invalid: list[PilotState]
    settling: list[PilotState]
    gone: list[str]  # in the cursor, no longer in the landing folder

    @property
    def problems(self) -> list[str]:
        return [p for s in self.invalid for p in s.problems]


def scan_landing(
    landing: Path, cursor: Cursor, *, now: float | None = None, settle_s: float = DEFAULT_SETTLE_S
) -> ScanResult:
    new: list[PilotState] = []
    changed: list[PilotState] = []
    unchanged: list[PilotState] = []
    invalid: list[PilotState] = []
    settling: list[PilotState] = []
    seen: set[str] = set()
    for folder in pilot_folders(landing):
        seen.add(folder.name)
        state = inspect_pilot(folder, cursor.stamps(folder.name), now=now, settle_s=settle_s)
        if state.status == "invalid":
            invalid.append(state)
        elif state.status == "settling":
            settling.append(state)
        elif cursor.digest(state.folder) is None:
            new.append(state)
        elif cursor.pending(state.folder) or cursor.digest(state.folder) != state.digest:
            changed.append(state)
        else:
            unchanged.append(state)
    gone = sorted(set(cursor.pilots) - seen)
    return ScanResult(new, changed, unchanged, invalid, settling, gone)
