"""Trains a small altup model on a text corpus with a SentencePiece tokenizer.

Resumable: state (model, optimizer, step, random generators) is saved to OUT/state.pt every
--save-every steps and at the end, written to a temporary file and renamed; running the same
command again continues from there. The model for the converter is OUT/model.safetensors,
with the config in its metadata. Validation loss is measured on the last lines of the corpus.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from .config import AltUpConfig


MOE_BALANCE = 0.01  # the weight of a mixture of experts' load-balancing loss


def encode_corpus(corpus: Path, tokenizer: Path, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Token streams (train, validation): each line is BOS + its pieces."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer))
    lines = [l for l in Path(corpus).read_text(encoding="utf-8").splitlines() if l.strip()]
    n_val = max(1, int(len(lines) * val_fraction))
    def stream(ls):
        ids = []
        for ids_line in sp.encode(ls):
            ids.append(sp.bos_id())
            ids.extend(ids_line)
        return np.asarray(ids, dtype=np.int64)
    return stream(lines[:-n_val]), stream(lines[-n_val:])


def save_atomic(obj_writer, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    obj_writer(tmp)
    os.replace(tmp, path)


def export_safetensors(model, config: AltUpConfig, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().float() for k, v in model.state_dict().items()}
    save_atomic(lambda p: save_file(tensors, str(p), metadata={"altup_config": json.dumps(config.to_dict())}), path)


def train(config: AltUpConfig, corpus: Path, tokenizer: Path, out: Path, steps: int, batch: int, lr: float,
          warmup: int, eval_every: int, save_every: int, seed: int, threads: int, val_fraction: float = 0.02,
          stop_at: int | None = None) -> dict:
    """Trains to `steps` (resuming from OUT/state.pt if present). `stop_at` ends the run early
    at that step, as an interruption would (tests use it to check resuming)."""
    import torch
    from tqdm import tqdm

    from .stagformer import build_model

    torch.set_num_threads(threads)
    if not out.parent.is_dir():  # the run folder is made here; a mistyped path above it is an error
        raise FileNotFoundError(f"{out}: the folder {out.parent} does not exist")
    out.mkdir(exist_ok=True)
    train_ids, val_ids = encode_corpus(corpus, tokenizer, val_fraction)
    T = config.context_length
    if len(train_ids) <= T + 1 or len(val_ids) <= T + 1:
        raise ValueError(f"corpus too small for a context of {T} tokens")

    torch.manual_seed(seed)
    model = build_model(config)  # AltUp, or StagFormer when config.stacks > 0
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    rng = np.random.default_rng(seed)
    step, history = 0, []
    state_path = out / "state.pt"
    if state_path.exists():
        state = torch.load(state_path, weights_only=False)
        # Keys added to the config since the run began take their defaults.
        if AltUpConfig.from_dict(state["config"]).to_dict() != config.to_dict():
            raise ValueError(f"{state_path} was trained with another config; use a new --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, history = state["step"], state["history"]
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resuming from step {step}")

    def batch_of(ids: np.ndarray, n: int, r: np.random.Generator):
        starts = r.integers(0, len(ids) - T - 1, size=n)
        x = np.stack([ids[s:s + T] for s in starts])
        y = np.stack([ids[s + 1:s + T + 1] for s in starts])
        return torch.from_numpy(x), torch.from_numpy(y)

    val_rng = np.random.default_rng(seed + 1)
    val_batches = [batch_of(val_ids, batch, val_rng) for _ in range(8)]  # fixed, so losses compare

    def val_loss(width: int | None = None) -> float:
        model.eval()
        with torch.no_grad():
            losses = [torch.nn.functional.cross_entropy(model(x, ffn_widths=width).flatten(0, 1), y.flatten()).item()
                      for x, y in val_batches]
        model.train()
        return float(np.mean(losses))

    # MatFormer: every step runs forward and backward at each nested width and sums the losses,
    # as the reference reproduction of the paper does (granularity 1: the plain loss).
    widths = config.granularities() if config.matformer > 1 else [None]

    def save() -> None:
        state = {"config": config.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                 "history": history, "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}
        save_atomic(lambda p: torch.save(state, p), state_path)
        export_safetensors(model, config, out / "model.safetensors")
        (out / "history.json").write_text(json.dumps(history, indent=1))

    model.train()
    bar = tqdm(total=steps, initial=step, desc="train", unit="step", dynamic_ncols=True)
    t0 = time.time()
    while step < steps and (stop_at is None or step < stop_at):
        # Linear warm-up, then cosine decay to 10% of the peak.
        scale = min(1.0, (step + 1) / max(1, warmup))
        if step >= warmup:
            scale = 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))
        for group in opt.param_groups:
            group["lr"] = lr * scale
        x, y = batch_of(train_ids, batch, rng)
        opt.zero_grad(set_to_none=True)
        for m in widths:
            loss = torch.nn.functional.cross_entropy(model(x, ffn_widths=m).flatten(0, 1), y.flatten())
            if config.experts:  # the experts' load balance (Switch Transformer's loss, weight 0.01)
                aux = sum(layer.ffn.aux_loss for layer in model.layers if hasattr(layer.ffn, "aux_loss"))
                (loss + MOE_BALANCE * aux).backward()
                continue
            loss.backward()  # gradients add up over the widths: the summed loss
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")  # at the full width
        if step % eval_every == 0 or step == steps:
            v = val_loss()
            entry = {"step": step, "train_loss": loss.item(), "val_loss": v, "seconds": time.time() - t0}
            if config.matformer > 1:
                entry["val_loss_by_width"] = {str(m): (v if m == config.ffn_dim else val_loss(m)) for m in widths}
            history.append(entry)
            bar.write(f"step {step}: train loss {loss.item():.4f}, validation loss {v:.4f}" +
                      (f" (by FFN width: {entry['val_loss_by_width']})" if config.matformer > 1 else ""))
        if step % save_every == 0 or step == steps:
            save()
    bar.close()
    return history[-1] if history else {}
