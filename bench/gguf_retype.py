#!/usr/bin/env python3
"""Copy a GGUF file with its half-precision weight matrices stored as another float type.

    .venv/bin/python bench/gguf_retype.py demo/kjv-altup-k2.gguf runs/bf16acc/demo-bf16.gguf --to bf16

For measurements on a trained model at a precision it was not converted at (bench/
bf16_accuracy.sh): every 2-D f16 / bf16 tensor is converted to the new type by the gguf
package's own conversion; what the converter kept in f32 (norms, AltUp coefficients) and
everything else is copied as it is, and so is all metadata. Written to a temporary file, renamed when complete.
"""
import argparse
import os
import sys

import numpy as np
import gguf


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--to", choices=["bf16", "f16", "f32"], required=True)
    a = ap.parse_args()
    try:
        reader = gguf.GGUFReader(a.src)
    except (OSError, ValueError) as e:
        print(f"gguf_retype: cannot read {a.src}: {e}", file=sys.stderr)
        return 1
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    target = {"bf16": gguf.GGMLQuantizationType.BF16, "f16": gguf.GGMLQuantizationType.F16,
              "f32": gguf.GGMLQuantizationType.F32}[a.to]
    tmp = a.dst + ".tmp"
    writer = gguf.GGUFWriter(tmp, arch)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub)
    out = []
    half_types = (gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.BF16)
    for t in reader.tensors:
        if t.tensor_type in half_types and len(t.shape) == 2:
            # GGUF lists shapes innermost first; numpy wants them outermost first.
            shape = [int(n) for n in reversed(t.shape)]
            if t.tensor_type == gguf.GGMLQuantizationType.BF16:
                values = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape)
            else:
                values = np.asarray(t.data, dtype=np.float32).reshape(shape)
            data = gguf.quants.quantize(values, target) if target != gguf.GGMLQuantizationType.F32 else values
            out.append((t.name, data, target))
        else:
            out.append((t.name, np.asarray(t.data), t.tensor_type))
    for name, data, ty in out:
        # numpy float16 / float32 arrays name their own type; byte arrays need it given.
        writer.add_tensor(name, data, raw_dtype=ty if data.dtype == np.uint8 else None)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, a.dst)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
