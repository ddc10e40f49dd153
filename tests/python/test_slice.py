"""`altup-tools slice` (converters/altup_tools/slice.py): a MatFormer sub-model written as a file
of its own runs bit for bit as the whole file with the same choice at load (`altup eval
--submodel ...`), for the weight types the converter writes; the Hugging Face path gives the
same model; the published table the runtime compiles in is the one Python reads; bad choices
and bad output paths are one line, exit 1, no file left behind."""
import subprocess
import sys

import numpy as np
import pytest

import gguf
from altup_tools.gemma3n import convert_gemma3n
from altup_tools.slice import Choice, published, select
from golden import ALTUP, FIX, ROOT, eval_logits

WHOLE = FIX / "matformer_e4b_tiny.gguf"
HF = FIX / "matformer" / "e4b_tiny"
IDS = [5, 77, 123, 9, 200, 31, 64, 250, 7, 18, 99, 140, 3, 260, 45, 12]


def choices():
    """(args for the CLI, Choice) of each committed case (tests/fixtures/matformer_cases.txt)."""
    for line in (FIX / "matformer_cases.txt").read_text().splitlines():
        name, _, _, _, sub, skip, widths = line.split()
        c = Choice(*(x if x != "-" else "" for x in (sub, skip, widths)))
        args = [a for flag, v in (("--submodel", c.name), ("--skip-layers", c.skip_layers),
                                  ("--ffn-widths", c.ffn_widths)) if v for a in (flag, v)]
        yield name, args, c


def slice_cli(*args):
    return subprocess.run([sys.executable, "-m", "altup_tools", "slice", *map(str, args), "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT / "converters")


@pytest.mark.parametrize("name,args,choice", list(choices()))
def test_slice_of_the_file_equals_the_choice_at_load(tmp_path, name, args, choice):
    out = tmp_path / "sub.gguf"
    r = slice_cli(WHOLE, "--out", out, *args)
    assert r.returncode == 0, r.stderr
    at_load = eval_logits(tmp_path, WHOLE, IDS, *args)
    assert np.array_equal(eval_logits(tmp_path, out, IDS), at_load)
    # The file holds the sub-model only: its layers, its widths, in llama.cpp's keys.
    rd = gguf.GGUFReader(out)
    sel = select(choice, [128] * 35, ["full" if (i + 1) % 5 == 0 else "sliding" for i in range(35)], 15)
    assert int(rd.fields["gemma3n.block_count"].contents()) == len(sel.kept)
    assert list(rd.fields["gemma3n.feed_forward_length"].contents()) == sel.widths
    assert sum(1 for t in rd.tensors if t.name.endswith(".ffn_down.weight")) == len(sel.kept)


@pytest.mark.parametrize("dtype", ["bf16", "q8_0", "q4_0"])
def test_quantized_slices_are_copied_bytes(tmp_path, dtype):
    whole = tmp_path / f"whole-{dtype}.gguf"
    convert_gemma3n(HF, whole, dtype=dtype, progress=False)
    for args in (["--submodel", "E2B"], ["--skip-layers", "3,12-13,30", "--ffn-widths", "96"]):
        out = tmp_path / "sub.gguf"
        r = slice_cli(whole, "--out", out, *args)
        assert r.returncode == 0, r.stderr
        assert np.array_equal(eval_logits(tmp_path, out, IDS), eval_logits(tmp_path, whole, IDS, *args))
        # Bytes, not values: a kept layer's gate rows are the whole file's first rows.
        src = {t.name: t for t in gguf.GGUFReader(whole).tensors}
        got = {t.name: t for t in gguf.GGUFReader(out).tensors}
        a = np.asarray(got["blk.0.ffn_gate.weight"].data).view(np.uint8)
        b = np.asarray(src["blk.0.ffn_gate.weight"].data).view(np.uint8)
        assert np.array_equal(a.reshape(-1), b.reshape(-1)[:a.size])


def test_hugging_face_slice_gives_the_same_model(tmp_path):
    out = tmp_path / "sliced"
    r = slice_cli(HF, "--out", out, "--submodel", "E2B")
    assert r.returncode == 0, r.stderr
    import json
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 30 and cfg["num_kv_shared_layers"] == 10
    assert cfg["intermediate_size"] == [64] * 30
    gg = tmp_path / "sliced.gguf"
    convert_gemma3n(out, gg, dtype="f32", progress=False)
    assert np.array_equal(eval_logits(tmp_path, gg, IDS), eval_logits(tmp_path, WHOLE, IDS, "--submodel", "E2B"))
    # Straight to a GGUF as well.
    r = slice_cli(HF, "--out", tmp_path / "direct.gguf", "--submodel", "E2B", "--dtype", "f32")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(eval_logits(tmp_path, tmp_path / "direct.gguf", IDS), eval_logits(tmp_path, gg, IDS))


def test_the_table_is_the_one_the_runtime_lists():
    rows = published()
    assert [p.name for p in rows][:2] == ["E4B", "E2B"] and len(rows) == 16
    r = subprocess.run([str(ALTUP), "info", "--no-tensors", "-m", str(WHOLE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = r.stdout.split("sub-models (")[1].splitlines()[2:]
    assert [line.split()[0] for line in table] == [p.name for p in rows]
    assert [int(line.split()[1]) for line in table] == [p.layers - len(p.skip) for p in rows]


@pytest.mark.parametrize("args,want", [
    (["--submodel", "E9B"], "unknown configuration 'E9B'"),
    (["--skip-layers", "19"], "layer 19 cannot be skipped"),
    (["--skip-layers", "0-40"], "layer 40 is out of range"),
    (["--ffn-widths", "64,64"], "has 2 widths for 35 kept layers"),
    (["--ffn-widths", "256"], "stores 128 FFN units; 256 is more"),
    (["--submodel", "E2B", "--ffn-widths", "64"], "give it alone"),
])
def test_bad_choices_are_one_line(tmp_path, args, want):
    out = tmp_path / "sub.gguf"
    r = slice_cli(WHOLE, "--out", out, *args)
    assert r.returncode == 1
    assert want in r.stderr and r.stderr.count("\n") == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_output_must_not_be_an_input(tmp_path):
    copy = tmp_path / "m.gguf"
    copy.write_bytes(WHOLE.read_bytes())
    r = slice_cli(copy, "--out", copy, "--submodel", "E2B")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert copy.read_bytes() == WHOLE.read_bytes()
    r = slice_cli(HF, "--out", HF, "--submodel", "E2B")
    assert r.returncode == 1 and r.stderr.count("\n") == 1


def test_a_block_split_is_refused(tmp_path):
    whole = tmp_path / "q8.gguf"
    convert_gemma3n(HF, whole, dtype="q8_0", progress=False)
    r = slice_cli(whole, "--out", tmp_path / "sub.gguf", "--ffn-widths", "48")
    assert r.returncode == 1
    assert "splits the Q8_0 blocks of blk.0.ffn_down.weight" in r.stderr
    r = subprocess.run([str(ALTUP), "run", "-m", str(whole), "--ffn-widths", "48", "-n", "1", "-p", "a"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "splits the Q8_0 blocks of blk.0.ffn_down.weight" in r.stderr


def test_dense_fallback_of_a_narrowed_sparse_layer(tmp_path):
    """At 5% sparsity the sparse down product takes its dense fallback, which must read the
    narrowed down projection's rows where they are (a prefix of longer rows): the choice at
    load still equals the sliced file bit for bit, at load and through the cache."""
    import json
    import shutil
    hf = tmp_path / "hf"
    shutil.copytree(HF, hf)
    cfg = json.loads((hf / "config.json").read_text())
    cfg["activation_sparsity_pattern"] = [0.05] * 10 + [0.0] * 25
    (hf / "config.json").write_text(json.dumps(cfg))
    whole = tmp_path / "whole.gguf"
    convert_gemma3n(hf, whole, dtype="f32", progress=False)
    out = tmp_path / "sub.gguf"
    assert slice_cli(whole, "--out", out, "--submodel", "E2B").returncode == 0
    assert np.array_equal(eval_logits(tmp_path, out, IDS), eval_logits(tmp_path, whole, IDS, "--submodel", "E2B"))
    from altup_tools.runtime import Model
    a, b = Model(out, temperature=0), Model(whole, temperature=0, submodel="E2B")
    for t in IDS:  # one token at a time: the decode step's product
        assert np.array_equal(a.eval([t]), b.eval([t]))


def test_altup_and_llama_files_slice_too(tmp_path):
    for name, skip in (("model_k2_alternating_widened.gguf", "1-2"), ("model_llama_dense.gguf", "1")):
        out = tmp_path / f"sub-{name}"
        args = ["--skip-layers", skip, "--ffn-widths", "16"]
        r = slice_cli(FIX / name, "--out", out, *args)
        assert r.returncode == 0, r.stderr
        ids = [5, 9, 100, 7, 33, 12]
        assert np.array_equal(eval_logits(tmp_path, out, ids), eval_logits(tmp_path, FIX / name, ids, *args))
    # An alternating AltUp layer keeps its block only at load: a skip that would move it is refused.
    r = slice_cli(FIX / "model_k2_alternating_widened.gguf", "--out", tmp_path / "m.gguf", "--skip-layers", "1")
    assert r.returncode == 1 and "layer 2 would run on block 1 instead of 0" in r.stderr
    # One FFN width per file: a mix is for the choice at load.
    r = slice_cli(FIX / "model_k1_dense.gguf", "--out", tmp_path / "mix.gguf", "--ffn-widths", "16,32,48")
    assert r.returncode == 1 and "stores one FFN width" in r.stderr
    assert not (tmp_path / "mix.gguf").exists()


def test_not_a_gguf_file(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all")
    r = slice_cli(bad, "--out", tmp_path / "o.gguf", "--submodel", "E2B")
    assert r.returncode == 1 and "is not a readable GGUF file" in r.stderr and r.stderr.count("\n") == 1
