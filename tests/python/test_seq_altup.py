"""The Sequence-AltUp reference, trainer and converter (needs torch: run where .venv-train is
used, reported as skipped elsewhere). The runtime's golden tests (tests/test_model_seq.cpp)
compare against this reference; here the reference is checked against its own definition
(docs/sequence-altup.md)."""
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the Sequence-AltUp reference needs torch (scripts/bootstrap-train.sh)")

from altup_tools.config import AltUpConfig  # noqa: E402
from altup_tools.convert import ConvertError, convert  # noqa: E402
from altup_tools.model import AltUpModel  # noqa: E402
from altup_tools.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "demo" / "tokenizer.model"


def model(**kw) -> AltUpModel:
    torch.manual_seed(0)
    base = dict(vocab_size=64, d=16, n_layers=3, n_heads=2, n_kv_heads=1, head_dim=8, ffn_dim=32, K=2)
    c = AltUpConfig(**{**base, **kw})
    m = AltUpModel(c).double().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


@pytest.mark.parametrize("K", [1, 2])
def test_stride_one_is_the_dense_step_exactly(K):
    m = model(K=K, seq_stride=2, seq_layers="all")
    ids = torch.randint(0, 64, (2, 11))
    x = m.blocks_of(ids)
    pos = torch.arange(11)
    with torch.no_grad():
        for l in range(3):
            dense, seq = m.step(l, x, pos, None), m.sequence_step(l, x, pos, None, 1)
            assert all(torch.equal(a, b) for a, b in zip(dense, seq))


@pytest.mark.parametrize("k", [2, 3, 4])
def test_a_position_depends_on_no_later_token(k):
    m = model(seq_stride=k, seq_layers="all")
    ids = torch.randint(0, 64, (1, 13))
    other = ids.clone()
    other[0, 6:] = (other[0, 6:] + 1) % 64
    with torch.no_grad():
        assert torch.equal(m(ids)[0, :6], m(other)[0, :6])
        assert not torch.allclose(m(ids)[0, 6:], m(other)[0, 6:])


def test_a_token_sees_its_anchor_not_its_neighbours_in_a_strided_layer():
    # One layer, stride 4: positions 5, 6, 7 read the anchor at 4 and their own x only, so
    # changing the token at 5 leaves 6 and 7 alone; changing the anchor at 4 moves them all.
    m = model(K=1, n_layers=1, seq_stride=4, seq_layers="all", tie_embeddings=True)
    ids = torch.randint(0, 64, (1, 9))
    with torch.no_grad():
        base = m(ids)[0]
        at5 = ids.clone()
        at5[0, 5] = (at5[0, 5] + 1) % 64
        assert torch.equal(m(at5)[0, 6:8], base[6:8])
        assert not torch.equal(m(at5)[0, 5], base[5])
        at4 = ids.clone()
        at4[0, 4] = (at4[0, 4] + 1) % 64
        assert not torch.allclose(m(at4)[0, 5:8], base[5:8])


def test_the_correction_is_the_formula():
    m = model(K=1, n_layers=1, seq_stride=2, seq_layers="all")
    ids = torch.randint(0, 64, (1, 4))
    pos = torch.arange(4)
    with torch.no_grad():
        m.seq.copy_(torch.tensor([[0.7, 0.2, 1.3]]))
        x = m.blocks_of(ids)
        out = m.sequence_step(0, x, pos, None, 2)[0][0]
        ya = m.step(0, [x[0][:, ::2]], pos[::2], None)[0][0]    # anchors 0, 2
        xa = x[0][0, ::2]
        for i in range(4):
            a = i // 2
            want = ya[a] if i % 2 == 0 else 0.7 * x[0][0, i] + 0.2 * xa[a] + 1.3 * (ya[a] - 0.9 * xa[a])
            assert torch.allclose(out[i], want, atol=1e-12)


def test_positions_must_start_at_an_anchor():
    m = model(seq_stride=3, seq_layers="all")
    with pytest.raises(ValueError, match="consecutive positions from an anchor"):
        m(torch.randint(0, 64, (1, 5)), positions=torch.arange(1, 6))


@pytest.mark.parametrize("bad, match", [(dict(seq_stride=0), "seq_stride"), (dict(seq_stride=65), "seq_stride"),
                                        (dict(seq_stride=2, seq_layers="1,x"), "seq_layers"),
                                        (dict(seq_stride=2, seq_layers="7"), "outside"),
                                        (dict(seq_stride=2, sliding_window=8), "sliding window"),
                                        (dict(seq_stride=2, n_layers=4, stacks=2, K=1), "StagFormer")])
def test_bad_configs_are_refused(bad, match):
    kw = dict(vocab_size=64, d=16, n_layers=4, n_heads=2, n_kv_heads=1, head_dim=8, ffn_dim=32, K=2)
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        AltUpConfig(**kw).validate()


def test_which_layers():
    c = AltUpConfig(n_layers=6, seq_stride=4)
    assert c.strides == [1, 4, 4, 4, 4, 1]
    assert AltUpConfig(n_layers=3, seq_stride=2, seq_layers="all").strides == [2, 2, 2]
    assert AltUpConfig(n_layers=3, seq_stride=2, seq_layers="2, 0").strides == [2, 1, 2]
    assert AltUpConfig(n_layers=3, seq_stride=1, seq_layers="all").strides == [1, 1, 1]


def test_trainer_and_converter_write_the_strides(tmp_path):
    lines = [f"And the {w} said unto the {v}." for w in ("king", "man") for v in ("city", "house", "land")] * 40
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    c = AltUpConfig(vocab_size=2048, d=16, n_layers=4, n_heads=2, n_kv_heads=1, head_dim=8, ffn_dim=32,
                    context_length=16, K=2, seq_stride=2)
    last = train(c, tmp_path / "c.txt", TOKENIZER, tmp_path / "run", steps=4, batch=2, lr=1e-3, warmup=1,
                 eval_every=2, save_every=2, seed=1, threads=1, val_fraction=0.2)
    assert last["step"] == 4
    out = convert(tmp_path / "run" / "model.safetensors", TOKENIZER, tmp_path / "s.gguf", dtype="q8_0",
                  progress=False)
    import gguf

    r = gguf.GGUFReader(out)
    f = r.fields["altup.sequence.stride"]
    assert [int(f.parts[i][0]) for i in f.data] == [1, 2, 2, 1]
    names = {t.name for t in r.tensors}
    assert {"blk.1.seq_coef.weight", "blk.2.seq_coef.weight"} <= names
    assert "blk.0.seq_coef.weight" not in names and "blk.3.seq_coef.weight" not in names
    with pytest.raises(ConvertError, match="Sequence-AltUp"):
        convert(tmp_path / "run" / "model.safetensors", TOKENIZER, tmp_path / "l.gguf", arch="llama", progress=False)
    assert not (tmp_path / "l.gguf").exists()
