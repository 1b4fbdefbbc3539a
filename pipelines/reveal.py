"""Map tokens back, locally, for the operator who holds a pilot's secret (`stabilis reveal`).

Tokens cannot be reversed; but whoever has the secret and the raw identifiers (their own node
names, job ids, ...) can hash them again and see which token each one became. The values go
through the very `Anonymizer.tokens` loop ingest uses, with the secret read the way ingest
reads it (pilot.yaml `anonymization.secret_env`), so the tokens are bit-identical to the ones
stored. Nothing is written anywhere and the secret is never printed: only raw value → token
pairs, on the operator's own terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipelines.anonymize import (
    KINDS,
    AnonymizationError,
    Anonymizer,
    looks_like_token,
    secret_from_env,
)
from pipelines.config import PilotConfig


class RevealError(ValueError):
    """A request `reveal` cannot answer (unknown kind, malformed token, no values, ...)."""


@dataclass(frozen=True)
class Pair:
    kind: str
    value: str
    token: str


def pilot_anonymizer(cfg: PilotConfig) -> Anonymizer:
    """The pilot's Anonymizer, from the variable its pilot.yaml names (as ingest builds it)."""
    env = cfg.anonymization.secret_env
    try:
        return Anonymizer(secret_from_env(env))
    except AnonymizationError:
        raise RevealError(
            f"anonymization secret missing: environment variable {env!r} (pilot.yaml "
            "anonymization.secret_env) is unset or empty; set it to the pilot's secret to "
            "reveal its tokens"
        ) from None


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
