# shellcheck shell=bash
# Sourced by demo/make_stagformer_models.sh, make_moe_models.sh and make_seq_models.sh.
# train_setup WORK: the corpus in WORK (made once) and `common`, the options every run of the
# demo model's recipe shares (its data, tokenizer, width, heads, FFN, context, schedule and
# seed; STEPS steps, default 600). The scripts then set `shape` (each run's own options) and
# RUNS, and call train_runs.
train_setup() {
  PY=${PYTHON:-.venv-train/bin/python}
  STEPS=${STEPS:-600}
  work=$1
  mkdir -p "$work"
  [[ -f $work/kjv.txt ]] || "$PY" -m altup_tools corpus --out "$work/kjv.txt"
  common=(--corpus "$work/kjv.txt" --tokenizer demo/tokenizer.model --steps "$STEPS" --batch 16 --lr 3e-3
    --warmup 100 --eval-every 100 --save-every 100 --seed 0 --d 128 --heads 4 --kv-heads 2
    --head-dim 32 --ffn 384 --context 256)
}

# Trains each run of RUNS into $work/NAME and converts it to $work/NAME.gguf (f32).
train_runs() {
  local name
  for name in $RUNS; do
    [[ -n ${shape[$name]:-} ]] || { echo "unknown run $name (known: ${!shape[*]})" >&2; exit 1; }
    echo "== training $name (${shape[$name]})"
    # shellcheck disable=SC2086
    "$PY" -m altup_tools train "${common[@]}" ${shape[$name]} --out "$work/$name"
    "$PY" -m altup_tools convert "$work/$name/model.safetensors" --tokenizer demo/tokenizer.model \
      --out "$work/$name.gguf" --dtype f32 --name "kjv-$name" --no-progress
  done
}
