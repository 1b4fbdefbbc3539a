"""Tokenization: CPU time per million distinct identifiers, three ways to the same tokens.

    .venv/bin/python benchmarks/bench_tokenize.py [--values 1000000] [--repeat 2]

- `per-value`: the pre-#17 code: one `token()` call per value (hmac pads copied per call,
  `kind \\0 value` concatenated per value),
- `anonymizer`: pipelines.anonymize.Anonymizer.series, the production path (the compiled
  batch HMAC of pipelines/_hmac.c, with the CPU's SHA extensions where it has them),
- `portable-c`: the same compiled loop forced onto its plain-C SHA-256,
- `hashlib`: the fallback without the compiled module (a loop over SHA-256 states that
  already absorbed the pads and `kind \\0`),
- `duckdb-sql T`: HMAC composed in DuckDB with T threads,
  `kind || '-' || left(sha256(opad || unhex(sha256(ipad_kind || encode(v)))), 16)`, the key
  material passed as prepared-statement parameters (never in SQL text).

Every variant's tokens are checked equal to the anonymizer's before its time is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import duckdb
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines import anonymize  # noqa: E402
from pipelines.anonymize import TOKEN_HEX, Anonymizer  # noqa: E402

SECRET = b"stabilis-bench-secret-not-for-real-pilots"
HMAC_SQL = ("SELECT $kind || '-' || left(sha256($opad || unhex(sha256($ipad_kind || encode(v)))),"
            f" {TOKEN_HEX}) AS v FROM values_frame")


def pads(secret: bytes) -> tuple[bytes, bytes]:
    key = (hashlib.sha256(secret).digest() if len(secret) > 64 else secret).ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def duckdb_tokens(con: duckdb.DuckDBPyConnection, kind: str, s: pl.Series,
                  secret: bytes) -> pl.Series:
    """The same HMAC-SHA-256 tokens computed by DuckDB's sha256 over BLOBs."""
    ipad, opad = pads(secret)
    values_frame = s.alias("v").to_frame()  # noqa: F841 - scanned by name below
    params = {"kind": kind, "opad": opad, "ipad_kind": ipad + kind.encode() + b"\0"}
    return con.execute(HMAC_SQL, params).pl().to_series().alias(s.name)


def per_value_tokens(kind: str, s: pl.Series, secret: bytes) -> pl.Series:
    """The pre-#17 per-value path, kept here as the 'before' of the measurement."""
    ipad, opad = pads(secret)
    inner, outer = hashlib.sha256(ipad).copy, hashlib.sha256(opad).copy

    def token(value: str) -> str:
        h = inner()
        h.update(kind.encode() + b"\0" + value.encode("utf-8", "surrogatepass"))
        o = outer()
        o.update(h.digest())
        return f"{kind}-{o.hexdigest()[:TOKEN_HEX]}"

    return pl.Series(s.name, [None if v is None else token(v) for v in s.to_list()],
                     dtype=pl.String)


def with_digest8(anon: Anonymizer, portable: bool | None, run):
    """`run()` with the anonymizer's hashing forced onto the plain-C SHA-256 (True) or the
    hashlib fallback (None)."""
    real = anon._digest8

    def forced(kind, data, offsets, _portable=False):
        if portable is None:
            prefix = kind.encode() + b"\0"
            return anon._digest8_hashlib(prefix, bytes(data), offsets)
        return real(kind, data, offsets, True)

    anon._digest8 = forced
    try:
        return run()
    finally:
        del anon._digest8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    s = pl.select(("r" + pl.int_range(0, a.values).cast(pl.String)).alias("request_id"))
    s = s.to_series()
    anon = Anonymizer(SECRET)
    print(f"compiled HMAC: {anonymize._hmac is not None}, SHA extensions: "
          f"{anonymize._hmac is not None and anonymize._hmac.accelerated()}")
    want = anon.series("req", s)
    con = duckdb.connect()
    variants = {
        "per-value": lambda: per_value_tokens("req", s, SECRET),
        "anonymizer": lambda: anon.series("req", s),
        "portable-c": lambda: with_digest8(anon, portable=True, run=lambda: anon.series("req", s)),
        "hashlib": lambda: with_digest8(anon, portable=None, run=lambda: anon.series("req", s)),
        "duckdb-sql 1": lambda: con.execute("SET threads = 1") and duckdb_tokens(
            con, "req", s, SECRET),
        "duckdb-sql 2": lambda: con.execute("SET threads = 2") and duckdb_tokens(
            con, "req", s, SECRET),
    }
    for rep in range(a.repeat):
        for name, run in variants.items():
            t, c = time.perf_counter(), time.process_time()
            got = run()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            assert got.equals(want), f"{name}: tokens differ"
            print(f"run {rep + 1} {name:<13} {a.values:>10,} values {wall:6.2f} s wall "
                  f"{cpu:6.2f} s cpu  {a.values / wall / 1e6:5.2f} M values/s")


if __name__ == "__main__":
    main()
