"""bench/compare.py, the parts that run without llama.cpp (the peer is not installed on the
test path: it compiles for ~15 minutes): its models are real 'llama' GGUF files that the gguf
package reads and altup benches, its altup half parses `altup bench`, and bad use or a
missing peer ends with a clear message and a non-zero exit."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import gguf
import pytest

ROOT = Path(__file__).resolve().parents[2]
ALTUP = Path(os.environ.get("ALTUP_BIN", ROOT / "build" / "cli" / "altup"))
SCRIPT = ROOT / "bench" / "compare.py"

spec = importlib.util.spec_from_file_location("compare", SCRIPT)
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_models_are_llama_files_that_altup_benches(tmp_path):
    assert ALTUP.exists(), f"{ALTUP} is missing: build first (scripts/build.sh build)"
    paths = compare.make_models(tmp_path, ["f32", "f16"], d=128, layers=2, ffn=256, seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())  # no checkpoint left
    for dt, want in (("f32", gguf.GGMLQuantizationType.F32), ("f16", gguf.GGMLQuantizationType.F16)):
        r = gguf.GGUFReader(paths[dt])
        assert bytes(r.fields["general.architecture"].parts[-1]).decode() == "llama"
        assert r.get_tensor(0).tensor_type in (want, gguf.GGMLQuantizationType.F32)
        assert {t.name: t.tensor_type for t in r.tensors}["blk.0.ffn_up.weight"] == want
        res = compare.run_altup(ALTUP, paths[dt], n_prompt=16, n_gen=4, threads=1)
        assert res["pp16"] > 0 and res["tg4"] > 0 and res["peak_rss_mib"] > 0


def test_altup_failure_is_reported(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF not really")
    with pytest.raises(compare.CompareError, match="altup bench failed"):
        compare.run_altup(ALTUP, bad, 16, 4, 1)


def test_bad_usage_exits_2():
    r = run("--rounds", "0")
    assert r.returncode == 2 and "--rounds >= 1" in r.stderr


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is not None, reason="llama_cpp is installed here")
def test_missing_peer_says_how_to_install_it():
    r = run("--rounds", "1")
    assert r.returncode == 1 and "scripts/bootstrap-compare.sh" in r.stderr


def test_decode_bytes_counts_every_weight_once_and_one_embedding_row(tmp_path):
    """decode_bytes against the model's shapes written out by hand: d = 128, 2 layers, FFN
    256, 2 query heads and 1 KV head of 64, vocab 2048, an untied head; every tensor f32 in
    the f32 file, the 2-D ones f16 in the f16 file (1-D norms stay f32 there)."""
    d, ffn, kv, vocab, layers = 128, 256, 64, 2048, 2
    matrices = layers * (d * d + d * kv + d * kv + d * d + 3 * d * ffn) + vocab * d  # + the head
    norms = layers * 2 * d + d
    paths = compare.make_models(tmp_path, ["f32", "f16"], d=d, layers=layers, ffn=ffn, seed=1)
    assert compare.decode_bytes(paths["f32"]) == 4 * (matrices + norms + d)  # + one embedding row
    names = {t.name for t in gguf.GGUFReader(paths["f16"]).tensors}
    assert "output.weight" in names and "token_embd.weight" in names
    assert compare.decode_bytes(paths["f16"]) == 2 * (matrices + d) + 4 * norms


def test_read_bandwidth_comes_from_bench_ops_or_is_none(tmp_path):
    assert compare.read_bandwidth(tmp_path / "no-bench-ops", 1) is None
    bench_ops = ROOT / "build" / "bench" / "bench_ops"
    if bench_ops.exists():  # built with the project; not a condition for passing the above
        bw = compare.read_bandwidth(bench_ops, 1)
        assert bw is not None and 0.1 < bw < 10000
