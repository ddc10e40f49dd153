#!/usr/bin/env bash
# The AltUp paper's claim at our scale: dense-d, AltUp K=2 (widened), Recycled-AltUp K=2 and
# dense-2d, trained for the same steps on the same data with the same seed; then each model's
# validation loss and its decode speed in this runtime, side by side.
#
#   PYTHON=/path/to/python-with-torch bash bench/paper_claim.sh [STEPS] [OUT]
#
# PYTHON must have the converters installed with training extras; scripts/bootstrap-train.sh
# makes one in .venv-train (torch is large: about 3 GiB with its CUDA wheels from PyPI).
# Needs a release build (scripts/build.sh build) and Debian's bible-kjv.
# Writes OUT/results.md and OUT/results.json (default OUT: runs/paper_claim).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv-train/bin/python}
STEPS=${1:-1000}
OUT=${2:-runs/paper_claim}
ALTUP=build/cli/altup
[[ -x $PY ]] || { echo "paper_claim: no Python with torch at $PY (set PYTHON=...)" >&2; exit 1; }
[[ -x $ALTUP ]] || { echo "paper_claim: build first (scripts/build.sh build)" >&2; exit 1; }
mkdir -p "$OUT"

corpus=$OUT/kjv.txt
[[ -f $corpus ]] || "$PY" -m altup_tools corpus --out "$corpus"
tok=demo/tokenizer.model

common=(--corpus "$corpus" --tokenizer "$tok" --steps "$STEPS" --batch 16 --lr 3e-3 --warmup 100
        --eval-every 200 --save-every 200 --seed 0 --layers 6 --context 256 --kv-heads 2 --head-dim 32)
declare -A configs=(
  [dense_d]="--d 128 --heads 4 --ffn 384 --K 1"
  [altup_k2]="--d 128 --heads 4 --ffn 384 --K 2 --embedding widened"
  [recycled_k2]="--d 128 --heads 4 --ffn 384 --K 2 --embedding recycled"
  [dense_2d]="--d 256 --heads 8 --ffn 768 --K 1"
)
order=(dense_d altup_k2 recycled_k2 dense_2d)

for name in "${order[@]}"; do
  echo "== $name: training $STEPS steps"
  # shellcheck disable=SC2086
  "$PY" -m altup_tools train "${common[@]}" ${configs[$name]} --out "$OUT/$name" 2>&1 | grep -E "^step|done|resuming" || true
  "$PY" -m altup_tools convert "$OUT/$name/model.safetensors" --tokenizer "$tok" --out "$OUT/$name.gguf" \
    --dtype f16 --name "$name" --no-progress >/dev/null
done

# Decode speed: 128 greedy tokens, median of 5 runs, 2 threads; the runs are interleaved
# across models so that machine noise falls on all of them alike.
echo "== decode speed"
declare -A speeds
for rep in 1 2 3 4 5; do
  for name in "${order[@]}"; do
    line=$("$ALTUP" run -m "$OUT/$name.gguf" -p "And it came to pass" -n 128 --temp 0 -t 2 2>&1 >/dev/null | tail -1)
    tps=$(sed -E 's/.*decode [0-9]+ tokens, ([0-9.]+) tok\/s.*/\1/' <<<"$line")
    speeds[$name]="${speeds[$name]:-} $tps"
  done
done

"$PY" - "$OUT" "${order[@]}" <<PYEOF
import json, statistics, sys
from pathlib import Path
out, names = Path(sys.argv[1]), sys.argv[2:]
speeds = {$(for n in "${order[@]}"; do printf '"%s": [%s], ' "$n" "$(tr ' ' ',' <<<"${speeds[$n]# }")"; done)}
rows = []
for n in names:
    hist = json.loads((out / n / "history.json").read_text())
    from safetensors import safe_open
    with safe_open(str(out / n / "model.safetensors"), framework="numpy") as f:
        cfg = json.loads(f.metadata()["altup_config"])
    rows.append({"model": n, "steps": hist[-1]["step"], "val_loss": hist[-1]["val_loss"],
                 "decode_tok_s_median": statistics.median(speeds[n]), "decode_tok_s_runs": speeds[n],
                 "K": cfg["K"], "d": cfg["d"], "embedding": cfg["embedding"],
                 "gguf_mib": round((out / f"{n}.gguf").stat().st_size / 2**20, 2)})
base = next(r for r in rows if r["model"] == "dense_d")["decode_tok_s_median"]
for r in rows:
    r["decode_time_vs_dense_d"] = round(base / r["decode_tok_s_median"], 3)
(out / "results.json").write_text(json.dumps(rows, indent=1))
lines = ["| model | K | d | embedding | GGUF (f16) | val loss | decode tok/s (median of 5) | decode time vs dense-d |",
         "|---|---|---|---|---|---|---|---|"]
for r in rows:
    lines.append(f"| {r['model']} | {r['K']} | {r['d']} | {r['embedding']} | {r['gguf_mib']} MiB | {r['val_loss']:.4f} | "
                 f"{r['decode_tok_s_median']:.1f} | {r['decode_time_vs_dense_d']:.2f}x |")
(out / "results.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
