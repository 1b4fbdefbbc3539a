"""Observer-only: identifiers become keyed tokens, payload-like fields are dropped and counted.

A token is `<kind>-<first 16 hex of HMAC-SHA-256(secret, kind \\0 value)>`: the same input
gives the same token within a pilot (joins still work), nothing reverses it without the
secret, and the kind prefix keeps a node token from ever equalling a GPU token.
Each *distinct* value is hashed once (request ids, one per attempt, are hashed in place),
then the column is mapped with a polars join (`replace_strict`). A column's values go, as one
buffer of bytes and its offsets, to `pipelines/_hmac.c`: HMAC-SHA-256 from the key pads
absorbed once per call, two SHA-256 compressions a value (the CPU's SHA extensions where it
has them), outside the GIL, so the tokenizer thread no longer stalls ingest's reader and
inserter. The tokens come out as one Arrow buffer hex-encoded by numpy (`column`): no Python
str per value on either side. Without the compiled module (no C compiler at install) the
same digests come from a hashlib loop over precomputed states.
Measured (benchmarks/bench_tokenize.py, 1 M request ids, CPU s, this 2-core machine):
~0.17 s compiled (SHA extensions), ~0.6 s compiled portable C, ~0.9 s the hashlib loop,
1.5-1.9 s the same HMAC composed in DuckDB SQL (`sha256(opad || unhex(sha256(ipad || kind
\\0 || value)))`: software SHA-256, four compressions a value, no midstate to reuse).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable

import numpy as np
import polars as pl
import pyarrow as pa

try:  # the compiled batch HMAC (pyproject ext-modules); optional, see _digest8
    from pipelines import _hmac
except ImportError:  # pragma: no cover - installs without a C compiler
    _hmac = None

# byte -> its two hex digits, as the uint16 whose little-endian bytes spell them
_HEX2 = np.array([ord(f"{b:02x}"[0]) | ord(f"{b:02x}"[1]) << 8 for b in range(256)], dtype="<u2")
_BLOCK = 64  # SHA-256 block size (bytes): HMAC pads or hashes the key to it
TOKEN_HEX = 16  # 64 bits: collision odds ~1e-8 at 1e6 distinct values per kind
# Canonical identifier column -> token kind. parent_request_id shares request_id's kind so
# a retry still points at its first attempt's token.
COLUMN_KINDS: dict[str, str] = {
    "request_id": "req",
    "parent_request_id": "req",
    "node": "node",
    "gpu": "gpu",
    "job_id": "job",
    "gpu_ids": "gpu",
}
# Kinds whose columns hold (almost) one value per row: tokenized in place, not deduplicated.
MOSTLY_DISTINCT = frozenset({"req"})
KINDS = ("req", "node", "gpu", "job", "trace", "host", "pod", "container", "user", "tenant")
TOKEN_RE = re.compile(r"^(?:" + "|".join(KINDS) + r")-[0-9a-f]{" + str(TOKEN_HEX) + "}$")

# Payload-like field names (TELEMETRY.md "Observer-only"): never stored, only counted.
PAYLOAD_RE = re.compile(
    r"(^|[._])(prompt|completion|content|messages?|body|text|input\.messages|output\.messages"
    r"|system_instructions|query|response\.text)($|[._\d])",
    re.IGNORECASE,
)


class AnonymizationError(RuntimeError):
    """The pilot's secret is missing: nothing may be written without it."""


# Only the simulated demo's own variable has a published default (see pipelines/demo.py);
# any other variable a pilot names must be set by the operator.
DEMO_SECRET_ENV = "STABILIS_DEMO_SECRET"
DEMO_SECRET = "stabilis-demo-secret-not-for-real-pilots"


def secret_from_env(env_name: str) -> bytes:
    value = os.environ.get(env_name, "")
    if not value and env_name == DEMO_SECRET_ENV:
        value = DEMO_SECRET
    if not value:
        raise AnonymizationError(
            f"anonymization secret missing: environment variable {env_name!r} (named by "
            "pilot.yaml anonymization.secret_env) is unset or empty; set it to the pilot's "
            "secret before ingesting (identifiers are tokenized with it)"
        )
    return value.encode("utf-8")


def is_payload_field(name: str) -> bool:
    """Prompt/completion text, message bodies, `gen_ai.prompt*`, `*.content`, ..."""
    n = name.lower()
    return (
        n.startswith(("gen_ai.prompt", "gen_ai.completion", "llm.prompt", "llm.completion"))
        or n.endswith(".content")
        or PAYLOAD_RE.search(n) is not None
    )


class Anonymizer:
    """Keyed tokens for one pilot. Keeps no raw value beyond one call."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise AnonymizationError("anonymization secret is empty")
        # HMAC-SHA-256 (RFC 2104) from the key's two pads. They live only in this object's
        # memory (and the hash states made from them), never in a string, a query or a file.
        key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
        key = key.ljust(_BLOCK, b"\0")
        self._ipad = bytes(b ^ 0x36 for b in key)
        self._opad = bytes(b ^ 0x5C for b in key)

    def token(self, kind: str, value: str) -> str:
        return self.tokens(kind, (value,))[0]  # type: ignore[return-value]

    def tokens(self, kind: str, values: Iterable[str | None]) -> list[str | None]:
        """Tokens of `values` in order (None stays None), through the same hashing as
        `column`."""
        values = list(values)
        encoded = [v.encode("utf-8", "surrogatepass") for v in values if v is not None]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(v) for v in encoded], out=offsets[1:])
        digests = self._digest8(kind, b"".join(encoded), offsets)
        hexed = (digests[i : i + 8].hex() for i in range(0, len(digests), 8))
        return [None if v is None else f"{kind}-{next(hexed)}" for v in values]

    def _digest8(self, kind: str, data: bytes | memoryview | np.ndarray,
                 offsets: np.ndarray, portable: bool = False) -> bytes:
        """The first 8 bytes (the token's 16 hex) of HMAC-SHA-256(secret, kind \\0 value) for
        each value data[offsets[i]:offsets[i + 1]], end to end: the one hot loop of
        tokenization. `portable` forces the compiled module's plain-C SHA-256 (tests)."""
        prefix = kind.encode() + b"\0"
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        if _hmac is not None:
            return _hmac.digest8(self._ipad, self._opad, prefix, data, offsets, portable)
        return self._digest8_hashlib(prefix, bytes(data), offsets)

    def _digest8_hashlib(self, prefix: bytes, data: bytes, offsets: np.ndarray) -> bytes:
        """`_digest8` without the compiled module: a loop over copied SHA-256 states that
        already absorbed the pads (and `prefix`), ~0.9 us a value, holding the GIL."""
        inner_state = hashlib.sha256(self._ipad)
        inner_state.update(prefix)
        inner, outer = inner_state.copy, hashlib.sha256(self._opad).copy
        out: list[bytes] = []
        append = out.append
        bounds = offsets.tolist()
        for start, end in zip(bounds, bounds[1:], strict=False):
            h = inner()
            h.update(data[start:end])
            o = outer()
            o.update(h.digest())
            append(o.digest()[:8])
        return b"".join(out)

    def column(self, kind: str, s: pl.Series) -> pl.Series:
        """Tokens of a String series, nulls kept, as `tokens` gives them: the hot path of
        ingest. Values go in as bytes (a polars string is UTF-8 already) and the tokens come
        out as one Arrow buffer, hex-encoded by numpy: no Python str per value either way."""
        return self.column_values(kind, s)[0]

    def column_values(self, kind: str, s: pl.Series) -> tuple[pl.Series, np.ndarray]:
        """`column(kind, s)` and, for its non-null values in order, the number each token's
        hex spells (`token_of_value` turns it back): equal tokens, equal numbers, so a
        duplicate check can compare 8-byte integers instead of strings (ingest/dedupe.py)."""
        s = s.cast(pl.String)
        valid = s.is_not_null().to_numpy()
        n, k = len(s), int(valid.sum())
        # the non-null values as one Arrow binary array: its data buffer and int64 offsets go
        # to the hashing as they are (no Python object per value)
        binary = s.drop_nulls().cast(pl.Binary).rechunk().to_arrow(
            compat_level=pl.CompatLevel.oldest())
        binary = binary.cast(pa.large_binary()) if binary.type != pa.large_binary() else binary
        _, offsets_buf, data_buf = binary.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=np.int64)[binary.offset : binary.offset + k + 1]
        data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else b""
        digests = np.frombuffer(self._digest8(kind, data, offsets), dtype=np.uint8).reshape(k, 8)
        prefix = np.frombuffer(f"{kind}-".encode(), dtype=np.uint8)
        width = len(prefix) + TOKEN_HEX
        text = np.empty((k, width), dtype=np.uint8)
        text[:, : len(prefix)] = prefix
        text[:, len(prefix) :] = _HEX2[digests].view(np.uint8)  # one gather per byte
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(valid * width, out=offsets[1:])
        bitmap = None if k == n else pa.py_buffer(np.packbits(valid, bitorder="little"))
        arrow = pa.LargeStringArray.from_buffers(
            n, pa.py_buffer(offsets), pa.py_buffer(text), bitmap, n - k
        )
        # the token's 8 digest bytes read big-endian: the number its 16 hex digits spell
        values = np.ascontiguousarray(digests).view(">u8").reshape(k).astype(np.uint64)
        return pl.Series(s.name, arrow, dtype=pl.String), values

    def series(self, kind: str, s: pl.Series) -> pl.Series:
        """Tokenize a String (or List[String]) series; nulls stay null."""
        if isinstance(s.dtype, pl.List):
            old, new = self._mapping(kind, s.explode())
            return s.cast(pl.List(pl.String)).list.eval(
                pl.element().replace_strict(old, new, default=None, return_dtype=pl.String)
            )
        s = s.cast(pl.String)
        if kind in MOSTLY_DISTINCT:
            # one value per attempt: finding the few repeats (~0.2 s per million) costs more
            # than hashing them again (~0.2 s per million compiled, 0.9 s with hashlib)
            return self.column(kind, s)
        distinct = s.drop_nulls().unique()
        if distinct.len() == 0:
            return s
        if distinct.len() == s.len() - s.null_count():
            # every value distinct (request ids): hash in place, no join back (~25 % less CPU)
            return self.column(kind, s)
        new = self.column(kind, distinct)
        return s.replace_strict(distinct, new, default=None, return_dtype=pl.String)

    def _mapping(self, kind: str, s: pl.Series) -> tuple[pl.Series, pl.Series]:
        # (distinct values, their tokens) as two Series: replace_strict joins on them
        # directly, no million-entry dict to build and convert
        distinct = s.cast(pl.String).drop_nulls().unique()
        return distinct, self.column(kind, distinct)

    def frame(self, df: pl.DataFrame) -> pl.DataFrame:
        """Tokenize every identifier column present in `df`."""
        cols = [c for c in df.columns if c in COLUMN_KINDS]
        if not cols:
            return df
        return df.with_columns(self.series(COLUMN_KINDS[c], df.get_column(c)) for c in cols)

    def frame_values(self, df: pl.DataFrame, column: str) -> tuple[pl.DataFrame, np.ndarray]:
        """`frame(df)`, and the token numbers (`column_values`) of `column`, a column of a
        MOSTLY_DISTINCT kind (hashed in place, as `frame` would) without nulls."""
        kind = COLUMN_KINDS[column]
        if kind not in MOSTLY_DISTINCT or df.get_column(column).null_count():
            raise ValueError(f"{column}: expected a non-null column of a mostly distinct kind")
        tokens, values = self.column_values(kind, df.get_column(column))
        out = self.frame(df.drop(column)).insert_column(df.get_column_index(column), tokens)
        return out, values


def token_of_value(kind: str, value: int) -> str:
    """The token whose hex spells `value` (`Anonymizer.column_values`)."""
    return f"{kind}-{value:0{TOKEN_HEX}x}"


def looks_like_token(value: str) -> bool:
    return TOKEN_RE.match(value) is not None
