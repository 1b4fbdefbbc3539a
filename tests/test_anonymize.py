"""Observer-only: keyed tokens, payload dropping/counting, and the leak check."""

from __future__ import annotations

import hashlib
import hmac
import re

import polars as pl
import pytest

from pipelines.anonymize import (
    AnonymizationError,
    Anonymizer,
    is_payload_field,
    looks_like_token,
    secret_from_env,
)
from tests.adapter_helpers import FORMATS
from tests.test_hostile_inputs import make_pilot


def test_token_is_truncated_hmac_sha256_prefixed_by_kind():
    a = Anonymizer(b"k")
    expected = hmac.new(b"k", b"node\0gpu-node-001", hashlib.sha256).hexdigest()[:16]
    assert a.token("node", "gpu-node-001") == f"node-{expected}"
    assert re.fullmatch(r"node-[0-9a-f]{16}", a.token("node", "x"))
    assert a.token("node", "x") != a.token("gpu", "x")  # kinds never collide
    assert Anonymizer(b"other").token("node", "x") != a.token("node", "x")
    assert looks_like_token(a.token("req", "r1")) and not looks_like_token("node-1")


def test_frame_tokenizes_every_identifier_column_consistently():
    a = Anonymizer(b"k")
    df = pl.DataFrame({
        "request_id": ["r1", "r2"], "parent_request_id": [None, "r1"],
        "node": ["n", "n"], "gpu_ids": [["g0", "g1"], []], "pool": ["p", "p"],
    })
    out = a.frame(df)
    assert out["parent_request_id"][1] == out["request_id"][0]  # joins survive
    assert out["node"].n_unique() == 1 and out["pool"].to_list() == ["p", "p"]
    assert out["gpu_ids"].to_list() == [[a.token("gpu", "g0"), a.token("gpu", "g1")], []]
    assert out["parent_request_id"][0] is None


def test_each_distinct_value_is_hashed_once(monkeypatch):
    a = Anonymizer(b"k")
    calls = []
    real = a._digest8

    def spy(kind, data, offsets, portable=False):
        raw, bounds = bytes(data), list(offsets)
        calls.extend(raw[i:j] for i, j in zip(bounds, bounds[1:], strict=False))
        return real(kind, data, offsets, portable)

    monkeypatch.setattr(a, "_digest8", spy)  # the one hashing call
    a.series("node", pl.Series(["a", "b", "a"] * 10_000))
    assert sorted(calls) == [b"a", b"b"]


def test_missing_secret_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_SECRET", raising=False)
    with pytest.raises(AnonymizationError, match="NO_SUCH_SECRET.*unset"):
        secret_from_env("NO_SUCH_SECRET")


@pytest.mark.parametrize("name", ["gen_ai.prompt", "gen_ai.prompt.0.content",
                                  "gen_ai.completion", "message.content", "prompt",
                                  "gen_ai.input.messages", "http.request.body"])
def test_payload_fields(name):
    assert is_payload_field(name)


@pytest.mark.parametrize("name", ["gen_ai.usage.input_tokens", "gen_ai.request.model", "pool"])
def test_not_payload_fields(name):
    assert not is_payload_field(name)


def test_ingest_stores_only_tokens_and_counts_dropped(tmp_path):
    from pipelines.config import load_pilot
    from pipelines.ingest.load import ingest_pilot
    from pipelines.quality.leaks import scan_for_raw_ids
    from pipelines.warehouse import connect

    spans = (FORMATS / "genai_spans.json").read_bytes()
    d = make_pilot(tmp_path, [("otlp-json", None, "spans.json", spans, {})])
    con = connect(tmp_path / "w.duckdb")
    cfg = load_pilot(d)
    ingest_pilot(con, cfg)
    a = Anonymizer(secret_from_env("STABILIS_SECRET"))
    nodes = {n for (n,) in con.execute("SELECT DISTINCT node FROM requests").fetchall()}
    assert nodes == {a.token("node", "gpu-node-007")}
    dropped = dict(con.execute("SELECT field, count FROM dropped_fields WHERE source_index = 1"
                               ).fetchall())
    assert dropped["gen_ai.prompt"] == 1 and dropped["user.email"] == 1
    everything = " ".join(str(r) for t in ("requests", "quarantine", "dropped_fields")
                          for r in con.execute(f"SELECT * FROM {t}").fetchall())
    assert "gpu-node-007" not in everything and "tell me a secret" not in everything
    assert scan_for_raw_ids(con, cfg.pilot, a).passed
    # a raw id written by mistake is caught, and reported without its value
    con.execute("UPDATE quarantine SET reason = reason || ' on gpu-node-007'")
    report = scan_for_raw_ids(con, cfg.pilot, a)
    assert not report.passed and report.leaks == {"quarantine.reason": 1}


def test_only_the_demo_variable_has_a_default(monkeypatch):
    from pipelines.anonymize import DEMO_SECRET, DEMO_SECRET_ENV

    monkeypatch.delenv(DEMO_SECRET_ENV, raising=False)
    assert secret_from_env(DEMO_SECRET_ENV) == DEMO_SECRET.encode()
    monkeypatch.delenv("STABILIS_OTHER_SECRET", raising=False)
    with pytest.raises(AnonymizationError, match="STABILIS_OTHER_SECRET"):
        secret_from_env("STABILIS_OTHER_SECRET")


@pytest.mark.parametrize("secret", [b"k", b"x" * 64, b"long-" * 40, "sécret✓".encode()])
def test_token_equals_the_standard_hmac_for_any_key_and_text(secret):
    # the token is built from SHA-256 states (fast path): it must stay RFC 2104 HMAC-SHA-256
    a = Anonymizer(secret)
    for kind, value in (("req", "r-1"), ("gpu", "GPU-é✓🙂"), ("node", ""), ("job", "a\0b")):
        msg = kind.encode() + b"\0" + value.encode("utf-8")
        expected = hmac.new(secret, msg, hashlib.sha256).hexdigest()[:16]
        assert a.token(kind, value) == f"{kind}-{expected}"
    s = pl.Series(["r-2", None, "r-1", "r-2"])
    assert a.series("req", s).to_list() == [a.token("req", "r-2"), None,
                                            a.token("req", "r-1"), a.token("req", "r-2")]
    # all values distinct (request ids): hashed in place, same tokens, nulls stay null
    assert a.series("req", pl.Series(["r-3", None, "r-1"])).to_list() == [
        a.token("req", "r-3"), None, a.token("req", "r-1")]


def _many_values() -> list[str]:
    """ASCII, unicode (2-, 3- and 4-byte), empty, NUL, and lengths around SHA-256's block
    edges (55/56/64 bytes with the kind prefix) up to several blocks."""
    vals = ["", "\0", "a\0b", "é", "✓", "🙂", "GPU-é✓🙂", "naïve-node", "ジョブ-7", " lead "]
    vals += ["x" * n for n in (1, 49, 50, 51, 55, 56, 57, 59, 60, 63, 64, 65, 119, 128, 255, 256)]
    vals += ["é" * n for n in (27, 28, 32, 100)] + [f"r{i}" for i in range(3000)]
    return vals


@pytest.mark.parametrize("secret", [b"s3cret", b"y" * 65, "ключ".encode()])
def test_vectorized_tokens_are_bit_identical_to_the_reference_hmac(secret):
    """Every path (one value, a list, a column of distinct values, a column with repeats and
    nulls, a list column) gives RFC 2104 HMAC-SHA-256 exactly, as the per-value code did."""
    a = Anonymizer(secret)
    vals = _many_values()
    for kind in ("req", "gpu", "node"):
        want = [f"{kind}-" + hmac.new(secret, kind.encode() + b"\0" + v.encode("utf-8"),
                                      hashlib.sha256).hexdigest()[:16] for v in vals]
        assert a.tokens(kind, vals) == want
        assert [a.token(kind, v) for v in vals[:40]] == want[:40]
        assert a.series(kind, pl.Series(vals)).to_list() == want  # all distinct
        repeated = pl.Series([*vals, None, *vals[:50]])
        assert a.series(kind, repeated).to_list() == [*want, None, *want[:50]]
        # the column path: nulls anywhere, none at all, nothing but nulls
        col = pl.Series([None, *vals, None, None, *vals[:5], None])
        assert a.column(kind, col).to_list() == [None, *want, None, None, *want[:5], None]
        assert a.column(kind, pl.Series([], dtype=pl.String)).to_list() == []
        assert a.column(kind, pl.Series([None, None], dtype=pl.String)).to_list() == [None, None]
    lists = pl.Series([vals[:3], [], None, vals[3:6]])
    want_gpu = {v: a.token("gpu", v) for v in vals[:6]}
    assert a.series("gpu", lists).to_list() == [
        [want_gpu[v] for v in vals[:3]], [], None, [want_gpu[v] for v in vals[3:6]]]


def test_compiled_hmac_is_built_and_every_hashing_path_agrees():
    """The compiled batch HMAC (SHA extensions and plain C) and the hashlib fallback give the
    same 8 digest bytes as hmac.new, on values around every block edge, with a sliced data
    buffer (offsets not starting at 0) and with no values at all."""
    import numpy as np

    from pipelines import anonymize

    assert anonymize._hmac is not None, "pipelines/_hmac.c was not compiled (pip install -e .)"
    secret = b"edge-secret"
    a = Anonymizer(secret)
    vals = [v.encode() for v in _many_values()] + [bytes(range(256)) * 3]
    offsets = np.zeros(len(vals) + 1, dtype=np.int64)
    np.cumsum([len(v) for v in vals], out=offsets[1:])
    data = b"".join(vals)
    want = b"".join(hmac.new(secret, b"job\0" + v, hashlib.sha256).digest()[:8] for v in vals)
    assert a._digest8("job", data, offsets) == want
    assert a._digest8("job", data, offsets, portable=True) == want
    assert a._digest8_hashlib(b"job\0", data, offsets) == want
    assert a._digest8("job", data, offsets[5:]) == want[40:]
    assert a._digest8("job", b"", np.zeros(1, dtype=np.int64)) == b""
    with pytest.raises(ValueError, match="offsets"):
        a._digest8("job", data[:10], offsets)  # offsets past the data are refused, not read
