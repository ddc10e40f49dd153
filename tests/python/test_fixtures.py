"""Every committed fixture is exactly what its script makes now (so fixtures can be
regenerated, and nobody edited one by hand)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SCRIPTS = sorted(FIXTURES.glob("make_*.py"))


# What each script needs beyond the test environment; without it the check is skipped (and
# reported as skipped, never as passed).
NEEDS = {"make_model_fixtures.py": "torch", "make_gemma3n_fixtures.py": "transformers",
         "make_matformer_fixtures.py": "transformers", "make_stagformer_fixtures.py": "torch",
         "make_moe_fixtures.py": "transformers", "make_seq_fixtures.py": "torch"}


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_fixture_script_reproduces_committed_files(script, tmp_path):
    if script.name in NEEDS:
        pytest.importorskip(NEEDS[script.name], reason=f"{script.name} needs {NEEDS[script.name]} (reference-only)")
    if script.name == "make_tokenizer_fixtures.py" and shutil.which("bible") is None:
        pytest.skip("needs Debian's bible-kjv for the corpus")
    if script.name == "make_moe_fixtures.py" and not ((ROOT / ".llama-converter" / "convert_hf_to_gguf.py").is_file()
                                                      and (ROOT / ".llama-tools" / "bin" / "llama-quantize").is_file()):
        pytest.skip("needs llama.cpp's converter and llama-quantize (scripts/fetch-llama-converter.sh, "
                    "scripts/build-llama-tools.sh)")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "converters")}
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True, env=env)
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert made, f"{script.name} wrote nothing"
    for name in made:
        assert (FIXTURES / name).exists(), f"{name} is made by {script.name} but not committed"
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), f"{name} differs: rerun {script.name}"


def test_there_are_fixture_scripts():
    assert {s.name for s in SCRIPTS} >= {"make_gguf_fixtures.py", "make_attention_fixtures.py", "make_altup_fixtures.py",
                                         "make_model_fixtures.py", "make_tokenizer_fixtures.py",
                                         "make_gemma3n_fixtures.py", "make_quant_fixtures.py",
                                         "make_matformer_fixtures.py", "make_stagformer_fixtures.py",
                                         "make_moe_fixtures.py", "make_seq_fixtures.py"}


def test_gguf_package_reads_our_fixture_tensors_back():
    import gguf

    r = gguf.GGUFReader(FIXTURES / "llama_like.gguf")
    names = [t.name for t in r.tensors]
    assert names[0] == "token_embd.weight" and "blk.0.ffn_down.weight" in names
