# Sourced by demo/make_stagformer_models.sh and demo/make_moe_models.sh, after they set PY,
# work, RUNS, common (the options every run shares) and shape (each run's own options):
# trains each run of RUNS into $work/NAME and converts it to $work/NAME.gguf (f32).
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
