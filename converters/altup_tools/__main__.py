"""altup-tools: prepare the corpus, train the tokenizer and models, convert checkpoints to GGUF.

    altup-tools corpus --out data/kjv.txt
    altup-tools tokenizer --corpus data/kjv.txt --vocab-size 2048 --out data/tokenizer.model
    altup-tools train --corpus data/kjv.txt --tokenizer data/tokenizer.model --out runs/demo [model options]
    altup-tools convert runs/demo/model.safetensors --tokenizer data/tokenizer.model --out demo.gguf --dtype f16
    altup-tools convert dense.safetensors --tokenizer tok.model --out dense-llama.gguf --arch llama
    altup-tools convert path/to/gemma-3n-E2B-it/ --out gemma3n-e2b.gguf --dtype bf16
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import AltUpConfig


def add_model_options(p: argparse.ArgumentParser) -> None:
    d = AltUpConfig()
    g = p.add_argument_group("model")
    g.add_argument("--vocab-size", type=int, default=None, help="default: the tokenizer's size")
    g.add_argument("--d", type=int, default=d.d, help=f"block width (default {d.d})")
    g.add_argument("--layers", type=int, default=d.n_layers, help=f"(default {d.n_layers})")
    g.add_argument("--heads", type=int, default=d.n_heads, help=f"(default {d.n_heads})")
    g.add_argument("--kv-heads", type=int, default=d.n_kv_heads, help=f"(default {d.n_kv_heads})")
    g.add_argument("--head-dim", type=int, default=d.head_dim, help=f"(default {d.head_dim})")
    g.add_argument("--ffn", type=int, default=d.ffn_dim, help=f"FFN width (default {d.ffn_dim})")
    g.add_argument("--context", type=int, default=d.context_length, help=f"(default {d.context_length})")
    g.add_argument("--K", type=int, default=d.K, help=f"AltUp blocks, 1 = dense (default {d.K})")
    g.add_argument("--fixed-block", action="store_true", help="always compute block 0 (default: alternate)")
    g.add_argument("--embedding", choices=["widened", "recycled"], default=d.embedding)
    g.add_argument("--output", choices=["sum", "concat"], default=d.output)
    g.add_argument("--tie", action="store_true", help="tie the unembedding to the embedding")
    g.add_argument("--ffn-act", choices=["swiglu", "geglu"], default=d.ffn_act)
    g.add_argument("--rope-theta", type=float, default=d.rope_theta)
    g.add_argument("--sliding-window", type=int, default=0)
    g.add_argument("--matformer", type=int, default=1,
                   help="train the FFNs nested at this many widths, F, F/2, F/4, ... (MatFormer; the losses "
                        "at each are summed every step): any prefix width then runs with altup --ffn-widths "
                        "(default 1: a plain FFN)")
    g.add_argument("--experts", type=int, default=0,
                   help="a mixture of this many experts in every layer's FFN, Mixtral's routing (default 0: dense)")
    g.add_argument("--experts-used", type=int, default=2, help="experts each token uses (default 2)")
    g.add_argument("--moe-layers", default=d.moe_layers,
                   help="the layers with the experts: 'all', 'inner' (all but the first and the last) or "
                        f"indices such as 0,2; the others keep a dense FFN (default {d.moe_layers})")
    g.add_argument("--stacks", type=int, default=0,
                   help="a StagFormer of this many stacks of layers/stacks layers each, every stack after "
                        "the first cross-attending to the previous one's outputs at earlier positions; needs "
                        "--K 1 (default 0: not a StagFormer)")
    g.add_argument("--shared-stacks", action="store_true",
                   help="StagFormer: every stack runs the first stack's weights (each keeps its own cross-attention)")
    g.add_argument("--cross-window", type=int, default=0,
                   help="StagFormer: cross-attention reads the last W earlier positions (default 0: all of them)")
    g.add_argument("--seq-stride", type=int, default=1,
                   help="Sequence-AltUp: the --seq-layers layers run on every K-th position only (the anchors), "
                        "the other tokens predicted and corrected from their anchor (default 1: off)")
    g.add_argument("--seq-layers", default=d.seq_layers,
                   help="Sequence-AltUp's layers: 'all', 'inner' (all but the first and the last) or indices "
                        f"such as 1,2,4 (default {d.seq_layers})")


def config_from(a: argparse.Namespace, vocab_size: int) -> AltUpConfig:
    c = AltUpConfig(vocab_size=a.vocab_size or vocab_size, d=a.d, n_layers=a.layers, n_heads=a.heads,
                    n_kv_heads=a.kv_heads, head_dim=a.head_dim, ffn_dim=a.ffn, context_length=a.context, K=a.K,
                    alternating=not a.fixed_block, embedding=a.embedding, output=a.output, tie_embeddings=a.tie,
                    ffn_act=a.ffn_act, rope_theta=a.rope_theta, sliding_window=a.sliding_window,
                    matformer=a.matformer, experts=a.experts, experts_used=a.experts_used, moe_layers=a.moe_layers, stacks=a.stacks, shared_stacks=a.shared_stacks,
                    cross_window=a.cross_window, seq_stride=a.seq_stride, seq_layers=a.seq_layers)
    c.validate()
    return c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="altup-tools", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("corpus", help="extract the KJV Bible (Debian's bible-kjv) as one verse per line")
    p.add_argument("--out", type=Path, required=True)

    p = sub.add_parser("tokenizer", help="train a SentencePiece BPE tokenizer (byte fallback)")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--vocab-size", type=int, default=2048)
    p.add_argument("--out", type=Path, required=True, help="the .model file to write")

    p = sub.add_parser("train", help="train (or resume training) a small altup model")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--tokenizer", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="run folder: state.pt, model.safetensors, history.json")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    add_model_options(p)

    p = sub.add_parser("convert", help="checkpoint (.safetensors, or a Hugging Face Gemma 3n directory) -> GGUF")
    p.add_argument("checkpoint", type=Path, help="an altup-tools .safetensors file, or a Hugging Face Gemma 3n "
                                                 "directory (config.json, *.safetensors, tokenizer.model)")
    p.add_argument("--tokenizer", type=Path, default=None,
                   help="SentencePiece .model (required for .safetensors files; default for a directory: "
                        "its tokenizer.model)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--dtype", default="f16", choices=("f32", "f16", "bf16", "q8_0", "q4_0"),
                   help="the matrices' type: f32, f16, bf16, or ggml's q8_0 / q4_0 blocks (the output "
                        "head stays q8_0 in q4_0 files; rows that are not whole blocks of 32 stay f16; "
                        "norms and AltUp coefficients stay f32)")
    p.add_argument("--name", default=None, help="general.name (default: the checkpoint's file name)")
    p.add_argument("--arch", default="altup", help="altup (default), or llama for a dense K=1 model llama.cpp can "
                                                   "load; a Hugging Face directory is always gemma3n")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("slice", help="a MatFormer sub-model as a file of its own (GGUF bytes copied, or a "
                                     "Hugging Face Gemma 3n directory sliced)")
    p.add_argument("source", type=Path, help="a GGUF file (any weight type), or a Hugging Face Gemma 3n directory")
    p.add_argument("--out", type=Path, required=True,
                   help="the GGUF to write (from a GGUF; from a directory, a .gguf is the sliced checkpoint "
                        "converted), or a new folder for the sliced Hugging Face checkpoint")
    p.add_argument("--submodel", default="", help="a published configuration, e.g. E2B or E2.98B-block "
                                                  "(models/data/gemma3n_submodels.inc)")
    p.add_argument("--skip-layers", default="", help="layers to leave out (file indices, ranges: 20-24)")
    p.add_argument("--ffn-widths", default="", help="FFN width of each kept layer in order, or one for all")
    p.add_argument("--dtype", default="f16", choices=("f32", "f16", "bf16", "q8_0", "q4_0"),
                   help="the matrices' type when a Hugging Face directory is sliced into a .gguf")
    p.add_argument("--no-progress", action="store_true")

    a = ap.parse_args(argv)
    try:
        if a.cmd == "corpus":
            from .corpus import extract_kjv
            n = extract_kjv(a.out)
            print(f"wrote {n} lines to {a.out}")
        elif a.cmd == "tokenizer":
            from .tokenizer import train_tokenizer
            train_tokenizer(a.corpus, a.out, a.vocab_size)
            print(f"wrote {a.out}")
        elif a.cmd == "train":
            from .tokenizer import read_vocab
            from .train import train
            c = config_from(a, len(read_vocab(a.tokenizer).tokens))
            last = train(c, a.corpus, a.tokenizer, a.out, a.steps, a.batch, a.lr, a.warmup, a.eval_every,
                         a.save_every, a.seed, a.threads)
            print(f"done: {last}")
        elif a.cmd == "convert":
            from .convert import ConvertError
            if not a.checkpoint.exists():
                raise ConvertError(f"checkpoint {a.checkpoint} does not exist")
            if a.checkpoint.is_dir() and not (a.checkpoint / "config.json").is_file():
                raise ConvertError(f"checkpoint {a.checkpoint} is a directory, not a file, and not a Hugging Face "
                                   "checkpoint directory either (it has no config.json)")
            if (a.checkpoint / "config.json").is_file():  # a Hugging Face directory
                from .gemma3n import convert_gemma3n
                out = convert_gemma3n(a.checkpoint, a.out, a.dtype, a.name, a.tokenizer, progress=not a.no_progress)
            else:
                from .convert import convert
                out = convert(a.checkpoint, a.tokenizer, a.out, a.dtype, a.name, progress=not a.no_progress,
                              arch=a.arch)
            print(f"wrote {out}")
        elif a.cmd == "slice":
            from .convert import ConvertError
            from .slice import Choice, slice_gguf, slice_hf
            choice = Choice(a.submodel, a.skip_layers, a.ffn_widths)
            if not a.source.exists():
                raise ConvertError(f"{a.source} does not exist")
            if a.source.is_dir():
                sel = slice_hf(a.source, a.out, choice, a.dtype, progress=not a.no_progress)
            else:
                sel = slice_gguf(a.source, a.out, choice, progress=not a.no_progress)
            from .slice import runs
            print(f"wrote {a.out}: {len(sel.kept)} layers, FFN widths {runs(sel.widths)}")
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear line and exit 1
        from .convert import ConvertError
        if not isinstance(e, (ConvertError, ValueError, FileNotFoundError, RuntimeError, OSError)):
            raise
        print(f"altup-tools {a.cmd}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
