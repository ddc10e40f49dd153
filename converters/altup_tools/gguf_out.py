"""Writing GGUF files safely and without holding them in memory: a temporary file beside the
output, renamed over it only when complete (and removed on any failure), and tensors declared
up front, then streamed one at a time (the gguf package's writer in its sequential mode)."""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

QTYPES = ("bf16", "q8_0", "q4_0")


@contextmanager
def atomic_output(out: Path) -> Iterator[str]:
    """Yields a temporary path beside `out`; renames it over `out` (mode 644) when the block
    completes, removes it if the block raises."""
    out = Path(out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out}: the folder {out.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def add_tensor_info(w, name: str, shape: tuple[int, ...], dtype: str) -> int:
    """Declares a tensor of `shape` stored as f32 / f16 / bf16 / q8_0 / q4_0; returns its bytes."""
    import gguf

    if dtype in ("f32", "f16"):
        t = np.dtype(np.float32 if dtype == "f32" else np.float16)
        nbytes = int(np.prod(shape)) * t.itemsize
        w.add_tensor_info(name, shape, t, nbytes)
        return nbytes
    q = {"bf16": gguf.GGMLQuantizationType.BF16, "q8_0": gguf.GGMLQuantizationType.Q8_0,
         "q4_0": gguf.GGMLQuantizationType.Q4_0}[dtype]
    bshape = gguf.quant_shape_to_byte_shape(shape, q)
    w.add_tensor_info(name, bshape, np.dtype(np.uint8), int(np.prod(bshape)), raw_dtype=q)
    return int(np.prod(bshape))


def write_streamed(w, jobs: list, data_of: Callable, progress: bool, desc: str, sizes: list[int] | None = None) -> None:
    """After every tensor was declared (add_tensor_info, in the order of `jobs`): writes the
    header, the metadata and the tensor table, then each job's data_of(job), in order, with a
    progress bar (by bytes when `sizes` are given, else by tensors)."""
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = (tqdm(total=sum(sizes), unit="B", unit_scale=True, desc=desc, file=sys.stderr) if sizes
               else tqdm(total=len(jobs), unit="tensor", desc=desc, file=sys.stderr))
    for k, job in enumerate(jobs):
        w.write_tensor_data(data_of(job))
        if bar:
            bar.update(sizes[k] if sizes else 1)
    if bar:
        bar.close()
    w.close()
