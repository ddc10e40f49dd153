"""A Hugging Face checkpoint directory read lazily: config.json plus one or more .safetensors
files (sharded with model.safetensors.index.json, or not), in f32, f16 or bf16.

The safetensors files are parsed here (an 8-byte header length, a JSON header, then the raw
tensors) and memory-mapped, so a tensor is read only when asked for and only one is in memory
at a time: a 10 GB checkpoint converts in little memory. NumPy has no bfloat16, which is why
the safetensors package's NumPy reader is not used: bf16 is widened to f32 by a shift here.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


class CheckpointError(Exception):
    """A problem with the checkpoint, worded for the user."""


@dataclass
class TensorRef:
    file: Path
    dtype: str
    shape: tuple[int, ...]
    begin: int  # absolute byte offset in the file
    end: int


def read_header(path: Path) -> dict[str, TensorRef]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise CheckpointError(f"{path} is too short to be a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        if n > min(size - 8, 100 << 20):
            raise CheckpointError(f"{path}: header length {n} does not fit the file ({size} bytes)")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path}: the header is not JSON ({e})") from e
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the header is not a JSON object")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (b, e) = info["dtype"], tuple(int(s) for s in info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError) as ex:
            raise CheckpointError(f"{path}: malformed entry for tensor {name}") from ex
        if dtype not in DTYPES:
            raise CheckpointError(f"{path}: tensor {name} is {dtype}; this converter reads F32, F16 and BF16")
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(DTYPES[dtype]).itemsize
        if not (0 <= b <= e and e - b == nbytes and 8 + n + e <= size) or any(s < 0 for s in shape):
            raise CheckpointError(f"{path}: tensor {name} {list(shape)} {dtype} has offsets {b}..{e} that do not fit")
        out[name] = TensorRef(path, dtype, shape, 8 + n + b, 8 + n + e)
    return out


class Checkpoint:
    """config.json and the tensors of every shard, by name."""

    def __init__(self, directory: Path):
        d = Path(directory)
        if not d.exists():
            raise CheckpointError(f"checkpoint {d} does not exist")
        if not d.is_dir():
            raise CheckpointError(f"checkpoint {d} is not a directory (expected config.json and *.safetensors in it)")
        self.dir = d
        cfg = d / "config.json"
        if not cfg.is_file():
            raise CheckpointError(f"{d} has no config.json")
        try:
            self.config = json.loads(cfg.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{cfg} is not valid JSON: {e}") from e
        if not isinstance(self.config, dict):
            raise CheckpointError(f"{cfg} is not a JSON object")
        index = d / "model.safetensors.index.json"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
                files = sorted({d / f for f in weight_map.values()})
            except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
                raise CheckpointError(f"{index} is not a safetensors index: {e}") from e
        else:
            files = sorted(d.glob("*.safetensors"))
        if not files:
            raise CheckpointError(f"{d} has no .safetensors files")
        self.tensors: dict[str, TensorRef] = {}
        for f in files:
            if not f.is_file():
                raise CheckpointError(f"shard {f} is missing")
            for name, ref in read_header(f).items():
                if name in self.tensors:
                    raise CheckpointError(f"tensor {name} is in both {self.tensors[name].file.name} and {f.name}")
                self.tensors[name] = ref
        self.files = files
        # Every file the conversion reads, which its output must never replace.
        self.inputs = [cfg, *([index] if index.is_file() else []), *files]
        self._maps: dict[Path, np.memmap] = {}

    def raw(self, name: str) -> np.ndarray:
        """The tensor as stored, read-only and mapped (bf16 as its uint16 bit patterns)."""
        ref = self.tensors[name]
        m = self._maps.get(ref.file)
        if m is None:
            m = self._maps[ref.file] = np.memmap(ref.file, dtype=np.uint8, mode="r")
        return m[ref.begin:ref.end].view(DTYPES[ref.dtype]).reshape(ref.shape)

    def get(self, name: str) -> np.ndarray:
        """The tensor as float32 (a copy: the mapping stays read-only)."""
        ref = self.tensors[name]
        raw = self.raw(name)
        if ref.dtype == "BF16":
            return (raw.astype(np.uint32) << 16).view(np.float32)
        return raw.astype(np.float32)
