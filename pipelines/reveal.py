"""Map tokens back, locally, for the operator who holds a pilot's secret (`stabilis reveal`).

Tokens cannot be reversed; but whoever has the secret and the raw identifiers (their own node
names, job ids, ...) can hash them again and see which token each one became. The values go
through the very `Anonymizer.tokens` loop ingest uses, with the secret read the way ingest
reads it (pilot.yaml `anonymization.secret_env`), so the tokens are bit-identical to the ones
stored. Nothing is written anywhere and the secret is never printed: only raw value → token
pairs, on the operator's own terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.anonymize import (
    KINDS,
    AnonymizationError,
    Anonymizer,
    looks_like_token,
    secret_from_env,
)
from pipelines.config import PILOT_FILE, PilotConfigError, load_pilot

_MISSING_FILES = re.compile(r"^sources\[\d+\]\.path: no file matches ")


class RevealError(ValueError):
    """A request `reveal` cannot answer (unknown kind, malformed token, no values, ...)."""


@dataclass(frozen=True)
class Pair:
    kind: str
    value: str
    token: str


def pilot_secret_env(folder: Path) -> tuple[str, str]:
    """(pilot, the variable holding its secret) from `folder`/pilot.yaml, validated as ingest
    validates it, except that its sources' files need not be here: an operator may hold the
    pilot.yaml without the telemetry it pointed at."""
    try:
        cfg = load_pilot(folder)
        return cfg.pilot, cfg.anonymization.secret_env
    except PilotConfigError as e:
        if not all(_MISSING_FILES.search(p) for p in e.problems):
            raise
    # every other key validated above; read only the two that matter here, with the same rules
    from pipelines.config import _read_yaml, _Validator

    raw = _read_yaml((folder / PILOT_FILE).read_text(encoding="utf-8"))
    v = _Validator(raw, folder.resolve())
    pilot, env = v._pilot(raw.get("pilot")), v._anonymization(raw.get("anonymization", {}))
    return str(pilot), env.secret_env


def pilot_anonymizer(env: str) -> Anonymizer:
    """The pilot's Anonymizer, from the variable its pilot.yaml names (as ingest builds it)."""
    try:
        secret = secret_from_env(env)
    except AnonymizationError:
        secret = None  # raised outside the handler: the CLI's one line reports the root cause
    if secret is None:
        raise RevealError(
            f"anonymization secret missing: environment variable {env!r} (pilot.yaml "
            "anonymization.secret_env) is unset or empty; set it to the pilot's secret to "
            "reveal its tokens"
        )
    return Anonymizer(secret)


def read_values(args: Iterable[str], lines: Iterable[str] = ()) -> list[str]:
    """Arguments, then one value per line (ends trimmed, blank lines skipped), each once."""
    out: dict[str, None] = {}
    for v in args:
        out.setdefault(v, None)
    for line in lines:
        v = line.strip()
        if v:
            out.setdefault(v, None)
    return list(out)


def kinds_for(kind: str | None, token: str | None = None) -> tuple[str, ...]:
    """The kinds to hash with: `kind`, else the token's own prefix, else every kind."""
    if token is not None and not looks_like_token(token):
        raise RevealError(f"--token {token!r} is not a token (expected <kind>-<16 hex digits>, "
                          f"kind one of {', '.join(KINDS)})")
    if kind is not None and kind not in KINDS:
        raise RevealError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    token_kind = None if token is None else token.split("-", 1)[0]
    if kind is not None and token_kind is not None and kind != token_kind:
        raise RevealError(f"--kind {kind} cannot give --token {token} (a {token_kind} token)")
    if kind is not None:
        return (kind,)
    return KINDS if token_kind is None else (token_kind,)


def reveal(anon: Anonymizer, values: Sequence[str], kinds: Sequence[str],
           token: str | None = None) -> list[Pair]:
    """Every (kind, value, token), kind by kind in `kinds` order; with `token`, only the
    pairs whose token it is."""
    if not values:
        raise RevealError("no value given (arguments, or --from-file FILE, '-' for stdin)")
    pairs = [
        Pair(kind, value, tok)
        for kind in kinds
        for value, tok in zip(values, anon.tokens(kind, values), strict=True)
    ]
    return pairs if token is None else [p for p in pairs if p.token == token]
