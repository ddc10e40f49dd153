"""MatFormer sub-models as standalone files (`altup-tools slice`, docs/matformer.md).

A sub-model of a MatFormer-trained model (Gemma 3n E4B holds E2B and 14 published sizes
between) leaves some layers out and keeps a prefix of each kept layer's FFN: gate / up rows
[:m], down columns [:, :m]. This module applies the same rules as the runtime's selection at
load (models/submodel.cpp) and writes

  - from a GGUF (any weight type): a GGUF in llama.cpp's layout whose bytes are copied from
    the source, never re-quantized, so it runs bit for bit as the source with the same
    selection at load;
  - from a Hugging Face Gemma 3n directory: a sliced Hugging Face directory (config.json and
    safetensors, as Google's MatFormer Lab writes one), or, for an output ending in .gguf,
    that directory converted.

Rules (variants.md §1), written for any file: producers (the layers whose K / V the shared
layers read) may not be left out; the shared-KV count drops by the skipped shared layers;
layer types and sparsity are filtered by kept index; the per-layer embedding tables keep the
slices of the kept layers' original indices.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .convert import ConvertError, check_output_path

TABLE = Path(__file__).resolve().parents[2] / "models" / "data" / "gemma3n_submodels.inc"


@dataclass
class Published:
    name: str
    layers: int
    skip: list[int]
    full: list[int]
    mmlu: str


def parse_index_list(text: str, limit: int, what: str) -> list[int]:
    """'20-24,3' -> [3, 20, 21, 22, 23, 24], each in [0, limit)."""
    out: set[int] = set()
    for item in text.split(","):
        item = item.strip()
        a, sep, b = item.partition("-")
        try:
            lo, hi = (int(a), int(b)) if sep else (int(a), int(a))
        except ValueError:
            lo, hi = 1, 0
        if lo < 0 or lo > hi or not (a.strip().isdigit() and (not sep or b.strip().isdigit())):
            raise ConvertError(f"{what}: '{item}' is not a layer index or a range A-B (A <= B) in '{text}'")
        if hi >= limit:
            raise ConvertError(f"{what}: layer {hi} is out of range: the model has layers 0..{limit - 1}")
        out.update(range(lo, hi + 1))
    if not out:
        raise ConvertError(f"{what}: no layer index in '{text}'")
    return sorted(out)


def published() -> list[Published]:
    """Google's Gemma 3n slicing table, the file the runtime compiles in."""
    if not TABLE.is_file():
        raise ConvertError(f"{TABLE} (the published sub-model table) is missing")
    rows = []
    for line in TABLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", 'R"', ")")):
            continue
        name, layers, skip, full, mmlu = line.split()
        rows.append(Published(name, int(layers), [] if skip == "-" else parse_index_list(skip, 1 << 30, "table"),
                              [] if full == "-" else parse_index_list(full, 1 << 30, "table"), mmlu))
    return rows


@dataclass
class Choice:
    name: str = ""
    skip_layers: str = ""
    ffn_widths: str = ""


@dataclass
class Selection:
    kept: list[int]    # file layer indices, in order
    widths: list[int]  # FFN width per kept layer


def select(choice: Choice, widths_in_file: list[int], layer_types: list[str], n_shared_kv: int) -> Selection:
    """The rules of models/submodel.cpp: same refusals, same result."""
    L = len(widths_in_file)
    full_kept: list[int] | None = None
    skip: list[int] = []
    if choice.name:
        if choice.skip_layers or choice.ffn_widths:
            raise ConvertError("--submodel names a whole configuration: give it alone, or --skip-layers / "
                               "--ffn-widths")
        table = {p.name: p for p in published()}
        if choice.name not in table:
            raise ConvertError(f"--submodel: unknown configuration '{choice.name}' (known: {', '.join(table)})")
        p = table[choice.name]
        if p.layers != L:
            raise ConvertError(f"--submodel {p.name} is defined for a {p.layers}-layer model (Gemma 3n E4B); this "
                               f"one has {L} layers: choose with --skip-layers / --ffn-widths instead")
        skip, full_kept = p.skip, p.full
    elif choice.skip_layers:
        skip = parse_index_list(choice.skip_layers, L, "--skip-layers")
    # A shared layer reads the last earlier non-shared layer of its own type (transformers).
    first_shared = L - n_shared_kv
    for i in skip:
        for j in range(max(first_shared, i + 1), L):
            if n_shared_kv and producer(j, first_shared, layer_types) == i:
                raise ConvertError(f"layer {i} cannot be skipped: it computes the K / V cache that layer {j} and the "
                                   "other shared-cache layers of its kind read")
    kept = [i for i in range(L) if i not in set(skip)]
    if not kept:
        raise ConvertError("--skip-layers leaves no layer")
    if full_kept is not None:
        widths = [widths_in_file[l] if k in full_kept else widths_in_file[l] // 2 for k, l in enumerate(kept)]
    elif choice.ffn_widths:
        try:
            w = [int(x) for x in choice.ffn_widths.split(",")]
        except ValueError:
            raise ConvertError(f"--ffn-widths: '{choice.ffn_widths}' is not a list of positive widths") from None
        if any(x < 1 for x in w):
            raise ConvertError(f"--ffn-widths: '{choice.ffn_widths}' is not a list of positive widths")
        if len(w) not in (1, len(kept)):
            raise ConvertError(f"--ffn-widths has {len(w)} widths for {len(kept)} kept layers: give one per kept "
                               "layer, in order, or one for all")
        widths = w * len(kept) if len(w) == 1 else w
    else:
        widths = [widths_in_file[l] for l in kept]
    for k, (l, m) in enumerate(zip(kept, widths)):
        if m > widths_in_file[l]:
            raise ConvertError(f"--ffn-widths: kept layer {k} (file layer {l}) stores {widths_in_file[l]} FFN units; "
                               f"{m} is more")
    return Selection(kept, widths)


def producer(j: int, first_shared: int, layer_types: list[str]) -> int:
    for s in range(first_shared - 1, -1, -1):
        if layer_types[s] == layer_types[j]:
            return s
    return -1


# ---------------------------------------------------------------------------------------------
# GGUF -> GGUF: bytes copied.

def _field_value(field):
    import gguf
    if field.types[0] == gguf.GGUFValueType.ARRAY:
        return list(field.contents())
    return field.contents()


def slice_gguf(src: Path, out: Path, choice: Choice, progress: bool = True) -> Selection:
    import gguf

    from .gguf_out import atomic_output, write_streamed

    src, out = Path(src), Path(out)
    if not src.is_file():
        raise ConvertError(f"{src} does not exist")
    check_output_path(out, [src])
    try:
        r = gguf.GGUFReader(src)
    except (ValueError, KeyError, IndexError) as e:
        raise ConvertError(f"{src} is not a readable GGUF file ({e})") from e
    arch_field = r.fields.get("general.architecture")
    arch = arch_field.contents() if arch_field else ""
    if arch not in ("gemma3n", "altup", "llama"):
        raise ConvertError(f"{src}: architecture '{arch}' has no MatFormer sub-models (gemma3n, altup, llama have)")
    key = lambda k: f"{arch}.{k}"  # noqa: E731

    def required(k: str):
        if key(k) not in r.fields:
            raise ConvertError(f"{src}: the key {key(k)} is missing")
        return r.fields[key(k)]

    L = int(required("block_count").contents())
    ffn = _field_value(required("feed_forward_length"))
    widths_in_file = [int(x) for x in ffn] if isinstance(ffn, list) else [int(ffn)] * L
    if len(widths_in_file) != L:
        raise ConvertError(f"{src}: {key('feed_forward_length')} has {len(widths_in_file)} entries for {L} layers")
    n_shared = int(r.fields[key("attention.shared_kv_layers")].contents()) if key(
        "attention.shared_kv_layers") in r.fields else 0
    if key("attention.sliding_window_pattern") in r.fields:
        sliding = [bool(x) for x in _field_value(r.fields[key("attention.sliding_window_pattern")])]
    else:
        sliding = [(l + 1) % 5 != 0 for l in range(L)] if arch == "gemma3n" else [False] * L
    types = ["sliding" if s else "full" for s in sliding]
    sel = select(choice, widths_in_file, types, n_shared)
    kept, widths = sel.kept, sel.widths
    new_of = {l: i for i, l in enumerate(kept)}
    # An alternating AltUp layer runs on block l mod K; a file numbers its layers 0.. and has no
    # other way to say which block, so a skip may not shift a kept layer onto another block.
    K = int(r.fields[key("altup.num_inputs")].contents()) if key("altup.num_inputs") in r.fields else 1
    alternating = key("altup.alternating") in r.fields and bool(r.fields[key("altup.alternating")].contents())
    if arch == "altup" and alternating and K > 1:
        moved = [l for i, l in enumerate(kept) if i % K != l % K]
        if moved:
            raise ConvertError(f"layer {moved[0]} would run on block {new_of[moved[0]] % K} instead of {moved[0] % K} "
                               f"in a file of its own (an alternating K = {K} model): skip a multiple of {K} "
                               "consecutive layers, or run this choice from the whole file at load")

    tensors = {t.name: t for t in r.tensors}
    P = int(required("embedding_length_per_layer_input").contents()) if arch == "gemma3n" else 0

    def block_of(t) -> tuple[int, int]:
        return gguf.GGML_QUANT_SIZES[t.tensor_type]

    def rows_bytes(t) -> np.ndarray:  # [rows, row bytes] of the file's bytes
        ne = [int(x) for x in t.shape]
        rows = int(np.prod(ne[1:])) if len(ne) > 1 else 1
        return np.asarray(t.data).view(np.uint8).reshape(rows, -1)

    def col_bytes(t, cols: int, name: str, what: str) -> int:
        bs, ts = block_of(t)
        if cols % bs:
            raise ConvertError(f"{what}: a prefix of {cols} columns splits the {t.tensor_type.name} blocks of {name} "
                               f"(a multiple of {bs} is needed)")
        return cols // bs * ts

    jobs = []  # (new name, ne (ggml order), type, function giving [rows, bytes])
    for t in r.tensors:
        name = t.name
        ne = [int(x) for x in t.shape]
        if name.startswith("blk."):
            l = int(name.split(".")[1]) if name.split(".")[1].isdigit() else -1
            if l not in new_of:
                continue
            i = new_of[l]
            rest = name.split(".", 2)[2]
            new = f"blk.{i}.{rest}"
            m = widths[i]
            if rest in ("ffn_gate.weight", "ffn_up.weight") and m != ne[1]:
                jobs.append((new, [ne[0], m], t, lambda t=t, m=m: rows_bytes(t)[:m]))
            elif rest == "ffn_down.weight" and m != ne[0]:
                nb = col_bytes(t, m, name, f"layer {i} (blk.{l})")
                jobs.append((new, [m, ne[1]], t, lambda t=t, nb=nb: rows_bytes(t)[:, :nb]))
            else:
                jobs.append((new, ne, t, lambda t=t: rows_bytes(t)))
        elif name == "per_layer_token_embd.weight" and len(kept) != L:
            nb = col_bytes(t, P, name, "the per-layer table")
            cols = np.concatenate([np.arange(l * nb, (l + 1) * nb) for l in kept])
            jobs.append((name, [len(kept) * P, ne[1]], t, lambda t=t, cols=cols: rows_bytes(t)[:, cols]))
        elif name == "per_layer_model_proj.weight" and len(kept) != L:
            rows = np.concatenate([np.arange(l * P, (l + 1) * P) for l in kept])
            jobs.append((name, [ne[0], len(kept) * P], t, lambda t=t, rows=rows: rows_bytes(t)[rows]))
        else:
            jobs.append((name, ne, t, lambda t=t: rows_bytes(t)))
    del tensors

    sparsity = key("activation_sparsity_scale")
    with atomic_output(out) as tmp:
        w = gguf.GGUFWriter(tmp, arch=arch)
        if "general.alignment" in r.fields:
            w.data_alignment = int(r.fields["general.alignment"].contents())
        for k, f in r.fields.items():
            if k.startswith("GGUF.") or k == "general.architecture":
                continue
            v = _field_value(f)
            vtype = f.types[0]
            sub = f.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
            if k == key("block_count"):
                v = len(kept)
            elif k == key("feed_forward_length"):
                if arch == "gemma3n":
                    v, vtype, sub = widths, gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT32
                elif len(set(widths)) == 1:
                    v = widths[0]
                else:
                    raise ConvertError(f"the {arch} architecture stores one FFN width; a sub-model with several "
                                       "runs from the whole file with --ffn-widths at load")
            elif k == key("attention.shared_kv_layers"):
                v = n_shared - sum(1 for l in range(L - n_shared, L) if l not in new_of)
            elif k in (key("attention.sliding_window_pattern"), sparsity):
                v = [v[l] for l in kept]
            elif k == "general.name":
                v = f"{v} ({describe(choice)})"
            w.add_key_value(k, v, vtype, sub_type=sub)
        sizes = []
        for new, ne, t, _ in jobs:
            bs, ts = block_of(t)
            row_bytes = ne[0] // bs * ts
            rows = int(np.prod(ne[1:])) if len(ne) > 1 else 1
            bshape = [*reversed(ne[1:]), row_bytes]
            w.add_tensor_info(new, bshape, np.dtype(np.uint8), rows * row_bytes, raw_dtype=t.tensor_type)
            sizes.append(rows * row_bytes)
        write_streamed(w, jobs, lambda job: np.ascontiguousarray(job[3]()), progress, "slicing", sizes)
    return sel


def runs(widths: list[int]) -> str:
    """[64, 64, 128] -> '64 x2, 128 x1', as `altup info` prints widths."""
    out, i = [], 0
    while i < len(widths):
        j = i
        while j < len(widths) and widths[j] == widths[i]:
            j += 1
        out.append(f"{widths[i]} x{j - i}")
        i = j
    return ", ".join(out)


def describe(choice: Choice) -> str:
    if choice.name:
        return choice.name
    parts = ([f"skip layers {choice.skip_layers}"] if choice.skip_layers else []) + (
        [f"FFN widths {choice.ffn_widths}"] if choice.ffn_widths else [])
    return ", ".join(parts) or "the whole model"


# ---------------------------------------------------------------------------------------------
# Hugging Face Gemma 3n directory -> sliced directory (or GGUF).

def slice_hf(src: Path, out: Path, choice: Choice, dtype: str = "f16", progress: bool = True) -> Selection:
    from .gemma3n import convert_gemma3n, source_names, text_config
    from .hf_checkpoint import Checkpoint, CheckpointError

    src, out = Path(src), Path(out)
    if out.suffix == ".gguf":
        check_output_path(out, [p for p in src.glob("*") if p.is_file()])
        with tempfile.TemporaryDirectory(dir=out.parent if out.parent.is_dir() else None) as tmp:
            sel = slice_hf(src, Path(tmp) / "sliced", choice, progress=progress)
            convert_gemma3n(Path(tmp) / "sliced", out, dtype, progress=progress)
        return sel
    try:
        ck = Checkpoint(src)
    except CheckpointError as e:
        raise ConvertError(str(e)) from e
    if out.exists():
        if out.resolve() == src.resolve():
            raise ConvertError(f"{out} is the checkpoint being sliced: choose another output folder")
        raise ConvertError(f"{out} exists: choose a new folder for the sliced checkpoint")
    if not out.parent.is_dir():
        raise ConvertError(f"{out}: the folder {out.parent} does not exist")
    c = text_config(ck.config)
    L = c["num_hidden_layers"]
    sel = select(choice, c["intermediate_size"], c["layer_types"], c["num_kv_shared_layers"])
    kept, widths = sel.kept, sel.widths
    new_of = {l: i for i, l in enumerate(kept)}
    P = c["hidden_size_per_layer_input"]

    prefix = source_names(ck)[0] + "layers."
    plan = []  # (name, storage dtype, function giving the sliced array as stored)
    for name, ref in ck.tensors.items():
        raw = lambda name=name: ck.raw(name)  # noqa: E731
        if name.startswith(prefix):
            l, rest = name[len(prefix):].split(".", 1)
            if int(l) not in new_of:
                continue
            i = new_of[int(l)]
            m = widths[i]
            if rest in ("mlp.gate_proj.weight", "mlp.up_proj.weight"):
                plan.append((f"{prefix}{i}.{rest}", ref.dtype, lambda raw=raw, m=m: raw()[:m]))
            elif rest == "mlp.down_proj.weight":
                plan.append((f"{prefix}{i}.{rest}", ref.dtype, lambda raw=raw, m=m: raw()[:, :m]))
            else:
                plan.append((f"{prefix}{i}.{rest}", ref.dtype, raw))
        elif name.endswith("embed_tokens_per_layer.weight") and len(kept) != L:
            plan.append((name, ref.dtype, lambda raw=raw: np.concatenate([raw()[:, l * P:(l + 1) * P] for l in kept], 1)))
        elif name.endswith("per_layer_model_projection.weight") and len(kept) != L:
            plan.append((name, ref.dtype, lambda raw=raw: np.concatenate([raw()[l * P:(l + 1) * P] for l in kept], 0)))
        else:
            plan.append((name, ref.dtype, raw))

    cfg = json.loads(json.dumps(ck.config))
    t = cfg["text_config"] if cfg.get("model_type") == "gemma3n" else cfg
    t["num_hidden_layers"] = len(kept)
    t["intermediate_size"] = widths
    t["num_kv_shared_layers"] = c["num_kv_shared_layers"] - sum(
        1 for l in range(L - c["num_kv_shared_layers"], L) if l not in new_of)
    t["layer_types"] = [c["layer_types"][l] for l in kept]
    t["activation_sparsity_pattern"] = [c["activation_sparsity_pattern"][l] for l in kept]

    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=out.name + ".", suffix=".tmp"))
    try:
        write_safetensors(tmp / "model.safetensors", plan, progress)
        (tmp / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
        for extra in ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
                      "special_tokens_map.json"):
            if (src / extra).is_file():
                shutil.copy(src / extra, tmp / extra)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return sel


def write_safetensors(path: Path, plan: list, progress: bool) -> None:
    """One safetensors file, a tensor at a time: the header from the shapes, then the bytes
    (each tensor in the dtype it is stored in, bf16 included)."""
    shapes = []
    for name, dtype, get in plan:  # the shapes, without reading the data (views of the mapping)
        shapes.append(get().shape)
    header, offset = {}, 0
    for (name, dtype, _), shape in zip(plan, shapes):
        n = int(np.prod(shape, dtype=np.int64)) * (4 if dtype == "F32" else 2)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    bar = None
    if progress:
        import sys

        from tqdm import tqdm
        bar = tqdm(total=offset, unit="B", unit_scale=True, desc="slicing", file=sys.stderr)
    with open(path, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for name, dtype, get in plan:
            data = np.ascontiguousarray(get()).tobytes()
            f.write(data)
            if bar:
                bar.update(len(data))
    if bar:
        bar.close()
