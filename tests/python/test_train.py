"""The trainer (needs torch, so it runs where .venv-train is used, and is reported as skipped
elsewhere): stopping and resuming gives exactly the model an uninterrupted run gives, and the
exported checkpoint converts."""
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the trainer needs torch (scripts/bootstrap-train.sh)")

from safetensors.numpy import load_file  # noqa: E402

from altup_tools.config import AltUpConfig  # noqa: E402
from altup_tools.convert import convert  # noqa: E402
from altup_tools.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "demo" / "tokenizer.model"


def corpus(tmp: Path) -> Path:
    lines = [f"And the {w} said unto the {v}, Behold, the {w} is good." for w in ("king", "man", "LORD", "people")
             for v in ("city", "house", "land", "sea", "field")] * 20
    p = tmp / "corpus.txt"
    p.write_text("\n".join(lines) + "\n")
    return p


def run(tmp: Path, out: str, steps: int, stop_at=None) -> dict:
    c = AltUpConfig(vocab_size=2048, d=16, n_layers=2, n_heads=2, n_kv_heads=1, head_dim=8, ffn_dim=32,
                    context_length=16, K=2)
    train(c, corpus(tmp), TOKENIZER, tmp / out, steps=steps, batch=4, lr=1e-3, warmup=2, eval_every=2,
          save_every=2, seed=3, threads=1, val_fraction=0.2, stop_at=stop_at)
    return load_file(str(tmp / out / "model.safetensors"))


def test_resume_gives_the_same_model_as_one_run(tmp_path):
    straight = run(tmp_path, "a", 6)
    run(tmp_path, "b", 6, stop_at=4)  # interrupted after the save at step 4
    resumed = run(tmp_path, "b", 6)    # picks up state.pt
    assert straight.keys() == resumed.keys()
    for k in straight:
        assert (straight[k] == resumed[k]).all(), k
    history = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [h["step"] for h in history] == [2, 4, 6]
    assert all(h["val_loss"] > 0 for h in history)
    convert(tmp_path / "b" / "model.safetensors", TOKENIZER, tmp_path / "b.gguf", "f16", progress=False)


def test_matformer_training_logs_each_width_and_every_prefix_runs(tmp_path):
    """--matformer 3: the losses of widths 8, 16 and 32 are logged; the exported model run by
    the runtime at a prefix width gives the PyTorch reference's logits at that width."""
    import subprocess

    import numpy as np

    from altup_tools.model import AltUpModel
    c = AltUpConfig(vocab_size=2048, d=16, n_layers=2, n_heads=2, n_kv_heads=1, head_dim=8, ffn_dim=32,
                    context_length=16, K=2, matformer=3)
    assert c.granularities() == [8, 16, 32]
    train(c, corpus(tmp_path), TOKENIZER, tmp_path / "m", steps=4, batch=4, lr=1e-3, warmup=2, eval_every=2,
          save_every=2, seed=3, threads=1, val_fraction=0.2)
    history = json.loads((tmp_path / "m" / "history.json").read_text())
    assert set(history[-1]["val_loss_by_width"]) == {"8", "16", "32"}
    assert history[-1]["val_loss_by_width"]["32"] == history[-1]["val_loss"]
    convert(tmp_path / "m" / "model.safetensors", TOKENIZER, tmp_path / "m.gguf", "f32", progress=False)
    state = torch.load(tmp_path / "m" / "state.pt", weights_only=False)
    model = AltUpModel(c)
    model.load_state_dict(state["model"])
    ids = [5, 9, 100, 7, 33, 12]
    (tmp_path / "ids.txt").write_text(" ".join(map(str, ids)))
    for widths in ("8", "16,32"):
        r = subprocess.run([str(ROOT / "build" / "cli" / "altup"), "eval", "-m", str(tmp_path / "m.gguf"), "--tokens",
                            str(tmp_path / "ids.txt"), "--logits-out", str(tmp_path / "l.npy"), "--ffn-widths",
                            widths], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        w = [int(x) for x in widths.split(",")]
        with torch.no_grad():
            want = model(torch.tensor([ids]), ffn_widths=w[0] if len(w) == 1 else w)[0].numpy()
        got = np.load(tmp_path / "l.npy")
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


@pytest.mark.parametrize("K, arch, layers", [(2, "altup", "all"), (1, "llama", "all"), (2, "altup", "1")])
def test_mixture_of_experts_trains_converts_and_runs_as_the_reference(tmp_path, K, arch, layers):
    """--experts 4 --experts-used 2: the balance loss is added, the checkpoint converts (AltUp +
    MoE as "altup", a dense one as "llama" the way llama.cpp writes Mixtral) and the runtime
    gives the reference's logits."""
    import numpy as np

    from altup_tools.model import AltUpModel
    from golden import eval_logits

    c = AltUpConfig(vocab_size=2048, d=32, n_layers=2, n_heads=2, n_kv_heads=1, head_dim=16, ffn_dim=32,
                    context_length=16, K=K, experts=4, experts_used=2, moe_layers=layers)
    train(c, corpus(tmp_path), TOKENIZER, tmp_path / "m", steps=4, batch=4, lr=1e-3, warmup=2, eval_every=2,
          save_every=2, seed=3, threads=1, val_fraction=0.2)
    convert(tmp_path / "m" / "model.safetensors", TOKENIZER, tmp_path / "m.gguf", "f32", progress=False, arch=arch)
    model = AltUpModel(c)
    model.load_state_dict(torch.load(tmp_path / "m" / "state.pt", weights_only=False)["model"])
    moe = model.layers[1].ffn  # (layer 0 is dense with --moe-layers 1)
    assert hasattr(model.layers[0].ffn, "aux_loss") == (layers == "all")
    assert moe.aux_loss.item() == 0.0  # a fresh model has run nothing yet
    ids = [5, 9, 100, 7, 33, 12, 400, 8]
    with torch.no_grad():
        want = model(torch.tensor([ids]))[0].numpy()
    assert moe.aux_loss.item() > 0  # the balance loss of this forward pass
    got = eval_logits(tmp_path, tmp_path / "m.gguf", ids)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
