"""The committed GGUF fixtures are exactly what their script makes now (so they can be
regenerated, and nobody edited them by hand)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def test_gguf_fixtures_are_reproducible(tmp_path):
    subprocess.run([sys.executable, str(FIXTURES / "make_gguf_fixtures.py"), "--out", str(tmp_path)], check=True)
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == ["aligned64.gguf", "all_types.gguf", "gguf_expected.txt", "llama_like.gguf"]
    for name in made:
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), f"{name} differs: regenerate it"


def test_gguf_package_reads_our_fixture_tensors_back():
    import gguf

    r = gguf.GGUFReader(FIXTURES / "llama_like.gguf")
    names = [t.name for t in r.tensors]
    assert names[0] == "token_embd.weight" and "blk.0.ffn_down.weight" in names
