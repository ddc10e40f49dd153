"""The StagFormer reference, trainer and converter (needs torch: run where .venv-train is
used, reported as skipped elsewhere). The runtime's golden tests (tests/test_model_stagformer.cpp)
compare against this reference; here the reference is checked against its own definition."""
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the StagFormer reference needs torch (scripts/bootstrap-train.sh)")

from altup_tools.config import AltUpConfig  # noqa: E402
from altup_tools.convert import ConvertError, convert  # noqa: E402
from altup_tools.stagformer import StagFormerModel  # noqa: E402
from altup_tools.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "demo" / "tokenizer.model"


def model(**kw) -> StagFormerModel:
    torch.manual_seed(0)
    c = AltUpConfig(vocab_size=64, d=16, n_heads=2, n_kv_heads=1, head_dim=8, ffn_dim=32, K=1, **kw)
    m = StagFormerModel(c).double().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


@pytest.mark.parametrize("kw", [dict(n_layers=4, stacks=2), dict(n_layers=4, stacks=2, shared_stacks=True),
                                dict(n_layers=6, stacks=3, cross_window=2)])
def test_a_position_depends_on_no_later_token(kw):
    m = model(**kw)
    ids = torch.randint(0, 64, (1, 12))
    other = ids.clone()
    other[0, 7:] = (other[0, 7:] + 1) % 64
    with torch.no_grad():
        assert torch.equal(m(ids)[0, :7], m(other)[0, :7])
        assert not torch.allclose(m(ids)[0, 7:], m(other)[0, 7:])


def test_stack_two_reads_only_earlier_outputs_of_stack_one():
    # Changing token 5 changes stack 1's output at 5, which stack 2 may read from position 6 on
    # only: at position 5 the logits move through stack 2's own self-attention alone.
    m = model(n_layers=4, stacks=2)
    ids = torch.randint(0, 64, (1, 8))
    with torch.no_grad():
        e = m.embed(ids)
        s1 = m.run_stack(0, e, None, torch.arange(8))
        mem = m.mem_norm[0](s1)
        bumped = mem.clone()
        bumped[:, 5:] += 1.0  # the memory at 5 and later
        a = m.run_stack(1, e, mem, torch.arange(8))
        b = m.run_stack(1, e, bumped, torch.arange(8))
    assert torch.equal(a[:, :6], b[:, :6]) and not torch.allclose(a[:, 6:], b[:, 6:])


def test_window_one_is_the_linear_map_of_the_previous_output():
    m = model(n_layers=4, stacks=2, cross_window=1)
    ids = torch.randint(0, 64, (2, 10))
    with torch.no_grad():
        assert torch.allclose(m(ids), m(ids, linear_cross=True), atol=1e-12)
    with pytest.raises(ValueError, match="window of 1"):
        model(n_layers=4, stacks=2)(ids, linear_cross=True)


def test_the_recurrent_approximation_is_its_own_memory():
    m = model(n_layers=4, stacks=2, shared_stacks=True)
    ids = torch.randint(0, 64, (1, 9))
    rec = m.forward_recurrent(ids)
    with torch.no_grad():
        full = m(ids)
        # Position 0 reads no memory in either form: the same logits.
        assert torch.allclose(rec[0, 0], full[0, 0], atol=1e-12)
        # Later positions: what the recurrent pass feeds itself, recomputed from its definition.
        e = m.embed(ids)
        out = m.run_stack(1, e, torch.zeros_like(e), torch.arange(9))  # step 0's memory is never read
        mem = torch.zeros_like(e)
        for t in range(9):
            out = m.run_stack(1, e, mem, torch.arange(9))
            mem[:, t] = m.mem_norm[0](out[:, t])
        assert torch.allclose(rec, m.head(out), atol=1e-10)
        assert not torch.allclose(rec[0, 1:], full[0, 1:])
    with pytest.raises(ValueError, match="shared-weights model of 2 stacks"):
        model(n_layers=4, stacks=2).forward_recurrent(ids)


def test_one_stack_is_the_plain_decoder():
    from altup_tools.model import AltUpModel

    m = model(n_layers=3, stacks=1)
    plain = AltUpModel(AltUpConfig(vocab_size=64, d=16, n_heads=2, n_kv_heads=1, head_dim=8, ffn_dim=32, K=1,
                                   n_layers=3)).double()
    missing = plain.load_state_dict(m.state_dict(), strict=False)
    assert set(missing.missing_keys) == {"predict", "correct"}
    ids = torch.randint(0, 64, (1, 7))
    with torch.no_grad():
        assert torch.allclose(m(ids), plain(ids), atol=1e-12)


@pytest.mark.parametrize("bad, match", [(dict(stacks=3), "do not split"), (dict(stacks=2, K=2), "K = 1"),
                                        (dict(shared_stacks=True), "at least 2 stacks"),
                                        (dict(stacks=1, cross_window=4), "cross_window")])
def test_bad_configs_are_refused(bad, match):
    kw = dict(vocab_size=64, d=16, n_layers=4, n_heads=2, n_kv_heads=1, head_dim=8, ffn_dim=32, K=1)
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        AltUpConfig(**kw).validate()


def test_trainer_and_converter_write_a_stagformer_file(tmp_path):
    lines = [f"And the {w} said unto the {v}." for w in ("king", "man") for v in ("city", "house", "land")] * 40
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    c = AltUpConfig(vocab_size=2048, d=16, n_layers=4, n_heads=2, n_kv_heads=1, head_dim=8, ffn_dim=32,
                    context_length=16, K=1, stacks=2, shared_stacks=True, cross_window=4)
    last = train(c, tmp_path / "c.txt", TOKENIZER, tmp_path / "run", steps=4, batch=2, lr=1e-3, warmup=1,
                 eval_every=2, save_every=2, seed=1, threads=1, val_fraction=0.2)
    assert last["step"] == 4
    out = convert(tmp_path / "run" / "model.safetensors", TOKENIZER, tmp_path / "s.gguf", dtype="q8_0",
                  progress=False)
    import gguf

    r = gguf.GGUFReader(out)
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    assert arch == "stagformer"
    names = {t.name for t in r.tensors}
    assert {"cross.1.attn_q.weight", "stack.0.mem_norm.weight", "blk.1.ffn_down.weight"} <= names
    assert "blk.2.attn_q.weight" not in names  # shared: one stack's layers
    with pytest.raises(ConvertError, match="cannot write a StagFormer as 'llama'"):
        convert(tmp_path / "run" / "model.safetensors", TOKENIZER, tmp_path / "l.gguf", arch="llama", progress=False)
    assert not (tmp_path / "l.gguf").exists()
