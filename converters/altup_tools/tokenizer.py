"""The SentencePiece tokenizer: trained with the sentencepiece library, and read back as the
vocabulary llama.cpp's GGUF keys describe (tokens, scores, token types)."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

# llama.cpp's token types (tokenizer.ggml.token_type).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# Normalization the runtime reproduces exactly: no Unicode normalization, a dummy "▁" prefix,
# whitespace runs kept as they are.
TRAINER_OPTIONS = dict(
    model_type="bpe",
    byte_fallback=True,
    normalization_rule_name="identity",
    add_dummy_prefix=True,
    remove_extra_whitespaces=False,
    split_digits=True,
    character_coverage=1.0,
    unk_id=0,
    bos_id=1,
    eos_id=2,
    pad_id=-1,
)


def train_tokenizer(corpus: Path, out_model: Path, vocab_size: int, threads: int = 2) -> None:
    """Trains a BPE SentencePiece model on `corpus` and writes it to `out_model` (.model)."""
    import sentencepiece as spm

    if not out_model.parent.is_dir():
        raise FileNotFoundError(f"{out_model}: the folder {out_model.parent} does not exist")
    if Path(corpus).exists() and out_model.exists() and os.path.samefile(corpus, out_model):
        raise ValueError(f"--out {out_model} is the corpus itself; not overwriting it")
    with tempfile.TemporaryDirectory(dir=out_model.parent) as tmp:
        prefix = Path(tmp) / "tok"
        spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(prefix), vocab_size=vocab_size,
                                       num_threads=threads, minloglevel=2, **TRAINER_OPTIONS)
        os.replace(prefix.with_suffix(".model"), out_model)


@dataclass
class Vocab:
    tokens: list[str]
    scores: list[float]
    types: list[int]
    bos_id: int
    eos_id: int
    unk_id: int
    add_dummy_prefix: bool
    remove_extra_whitespaces: bool
    pad_id: int = -1


def read_vocab(model_path: Path) -> Vocab:
    """The vocabulary of a SentencePiece .model file, as GGUF stores it."""
    if not Path(model_path).is_file():
        raise FileNotFoundError(f"tokenizer model {model_path} does not exist")
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    proto = pb.ModelProto()
    proto.ParseFromString(Path(model_path).read_bytes())
    if proto.trainer_spec.model_type != pb.TrainerSpec.BPE:
        raise ValueError(f"{model_path}: only BPE SentencePiece models are supported")
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(float(sp.get_score(i)))
        if sp.is_unknown(i):
            types.append(UNKNOWN)
        elif sp.is_control(i):
            types.append(CONTROL)
        elif sp.is_byte(i):
            types.append(BYTE)
        elif sp.is_unused(i):
            types.append(UNUSED)
        elif proto.pieces[i].type == pb.ModelProto.SentencePiece.USER_DEFINED:
            types.append(USER_DEFINED)
        else:
            types.append(NORMAL)
    ns = proto.normalizer_spec
    return Vocab(tokens, scores, types, sp.bos_id(), sp.eos_id(), sp.unk_id(), ns.add_dummy_prefix,
                 ns.remove_extra_whitespaces, sp.pad_id())
