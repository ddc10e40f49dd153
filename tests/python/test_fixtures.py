"""Every committed fixture is exactly what its script makes now (so fixtures can be
regenerated, and nobody edited one by hand)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SCRIPTS = sorted(FIXTURES.glob("make_*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_fixture_script_reproduces_committed_files(script, tmp_path):
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True)
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made, f"{script.name} wrote nothing"
    for name in made:
        assert (FIXTURES / name).exists(), f"{name} is made by {script.name} but not committed"
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), f"{name} differs: rerun {script.name}"


def test_there_are_fixture_scripts():
    assert {s.name for s in SCRIPTS} >= {"make_gguf_fixtures.py", "make_attention_fixtures.py", "make_altup_fixtures.py"}


def test_gguf_package_reads_our_fixture_tensors_back():
    import gguf

    r = gguf.GGUFReader(FIXTURES / "llama_like.gguf")
    names = [t.name for t in r.tensors]
    assert names[0] == "token_embd.weight" and "blk.0.ffn_down.weight" in names
