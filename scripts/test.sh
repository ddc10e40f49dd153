#!/usr/bin/env bash
# Quick start, command 2: install what is missing, build, and run the whole test suite:
# the C++ tests in a release build, again with the kernel table and oneDNN capped at AVX2 and
# at SSE4.1/4.2 (and at plain AVX-512 where the CPU has VNNI), again under AddressSanitizer +
# UBSan, again as an ARM64 cross build under qemu-user (NEON kernels), the Python tests, and each libFuzzer target for a
# short time (ALTUP_FUZZ_SECONDS, default 15). Ends with one line
# "tests: N passed, M failed" and a non-zero status on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh || exit 1

status=0
run_suite() {  # name, build dir, meson options...
  local name=$1 dir=$2
  shift 2
  echo "== $name: building $dir"
  if ! scripts/build.sh "$dir" "$@"; then
    echo "== $name: BUILD FAILED"
    status=1
    return
  fi
  echo "== $name: meson test"
  (cd "$dir" && meson test --print-errorlogs --num-processes 2) | grep -vE "^(Expected Fail|Unexpected Pass|Timeout): " || status=1
}

run_suite "release" build

# The same release tests again with the kernel table and oneDNN capped below this machine's
# instruction set, so what another (older) x86-64 CPU would compute differently shows up here.
# Each run logs to its own meson-logs/testlog-<name>.json, counted below.
capped_logs=()
if [[ $(uname -m) == x86_64 && -f build/build.ninja ]]; then
  caps=("avx2 AVX2" "sse4.2 SSE41")
  # Where the VNNI table is in use, once more with the plain AVX-512 table and oneDNN below
  # AMX, as on an AVX-512 CPU without them. Its bf16 products then take vdpbf16ps
  # (ALTUP_BF16_NATIVE=1), as a CPU whose vdpbf16ps keeps up with FMAs would choose by
  # itself; the other caps leave oneDNN no bf16 product, so rows are widened there.
  if [[ $(build/cli/altup info --system | awk '/^kernel table/ {print $3}') == avx512_vnni ]]; then
    caps=("avx512 AVX512_CORE_BF16 1" "${caps[@]}")
  fi
  for cap in "${caps[@]}"; do
    read -r altup_isa dnnl_isa bf16_native <<<"$cap"
    export ALTUP_BF16_NATIVE=${bf16_native:-auto}
    echo "== release, capped: ALTUP_ISA=$altup_isa ONEDNN_MAX_CPU_ISA=$dnnl_isa ALTUP_BF16_NATIVE=$ALTUP_BF16_NATIVE"
    ALTUP_ISA=$altup_isa ONEDNN_MAX_CPU_ISA=$dnnl_isa build/cli/altup info --system |
      grep -E "^(kernel table|oneDNN|bf16 prefill)"
    (cd build && ALTUP_ISA=$altup_isa ONEDNN_MAX_CPU_ISA=$dnnl_isa ALTUP_EXPECT_ISA=$altup_isa \
      meson test --no-rebuild --print-errorlogs --num-processes 2 --logbase "testlog-$altup_isa") |
      grep -vE "^(Expected Fail|Unexpected Pass|Timeout): " || status=1
    capped_logs+=("build/meson-logs/testlog-$altup_isa.json")
  done
  unset ALTUP_BF16_NATIVE
fi
run_suite "sanitizers (address, undefined)" build-asan -Db_sanitize=address,undefined -Dbuildtype=debugoptimized
run_suite "arm64 (cross build, qemu-user)" build-arm64 --cross-file cross/aarch64-linux-gnu.ini -Donednn=disabled

echo "== python: pytest"
mkdir -p build
.venv/bin/python -m pytest -q -p no:cacheprovider --junitxml=build/pytest.xml tests/python || status=1

# Each libFuzzer target for a short, bounded time (ASan + UBSan; scripts/fuzz.sh). A longer
# campaign is `scripts/fuzz.sh TARGET SECONDS`; its figures are in docs/testing.md.
echo "== fuzz: each target for ${ALTUP_FUZZ_SECONDS:=15} s"
: >build/fuzz-summary.txt
for target in gguf model tokenizer options; do
  if ! scripts/fuzz.sh "$target" "$ALTUP_FUZZ_SECONDS" | tee -a build/fuzz-summary.txt; then
    echo "fuzz $target: FAILED" >>build/fuzz-summary.txt
    status=1
  fi
done

# One total over every doctest case (all builds), every pytest test and every fuzz run.
.venv/bin/python scripts/count_tests.py build/meson-logs/testlog.json "${capped_logs[@]}" \
  build-asan/meson-logs/testlog.json \
  build-arm64/meson-logs/testlog.json build/pytest.xml build/fuzz-summary.txt || status=1
exit $status
