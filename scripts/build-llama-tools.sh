#!/usr/bin/env bash
# llama.cpp's command-line tools that the quantized-file comparisons need, built from the
# llama.cpp sources vendored in PyPI's llama-cpp-python sdist (the version
# scripts/bootstrap-compare.sh builds): llama-quantize (writes Q8_0 / Q4_0 / Q4_K_M / Q5_K_M
# files from an f32 / f16 GGUF) and llama-perplexity (perplexity and KL divergence, the peer
# of `altup perplexity`). Installed in .llama-tools/bin. Kept out of the test and demo path:
# tests/python/test_llama_quantized.py is skipped (not passed) without them.
# Takes ~5-10 minutes on 2 cores. Usage: scripts/build-llama-tools.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
DEST=.llama-tools
# On an AMX CPU, ggml's AMX int8 kernels crash in this llama.cpp (see
# scripts/bootstrap-compare.sh): built without them there, and the marker says so.
CFLAGS_EXTRA=""
MARKER=$VERSION  # what $DEST/VERSION says about the build in it
if grep -qw amx_int8 /proc/cpuinfo 2>/dev/null; then
  CFLAGS_EXTRA="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  MARKER="$VERSION no-amx"
fi
if [[ -f $DEST/VERSION && $(cat $DEST/VERSION) == "$MARKER" && -x $DEST/bin/llama-quantize ]]; then
  echo "ready: $DEST/bin (llama.cpp from llama-cpp-python $MARKER)"
  exit 0
fi
scripts/bootstrap.sh >/dev/null
if ! command -v cmake >/dev/null; then
  echo "build-llama-tools: installing cmake (apt)"
  apt-get install -y -q cmake >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "build-llama-tools: downloading the llama-cpp-python $VERSION sdist from PyPI (~75 MB)"
.venv/bin/python -m pip download -q --disable-pip-version-check --no-binary llama-cpp-python --no-deps \
  "llama-cpp-python==$VERSION" -d "$tmp"
tar xzf "$tmp/llama_cpp_python-$VERSION.tar.gz" -C "$tmp"
src="$tmp/llama_cpp_python-$VERSION/vendor/llama.cpp"
echo "build-llama-tools: building llama-quantize and llama-perplexity (GGML_NATIVE, as llama.cpp's default)"
cmake -S "$src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DCMAKE_C_FLAGS="$CFLAGS_EXTRA" -DCMAKE_CXX_FLAGS="$CFLAGS_EXTRA" \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >"$tmp/cmake.log" ||
  { tail -20 "$tmp/cmake.log"; exit 1; }
cmake --build "$tmp/build" -j "$(nproc)" --target llama-quantize llama-perplexity >"$tmp/build.log" ||
  { tail -30 "$tmp/build.log"; exit 1; }
rm -rf "$DEST.new"
mkdir -p "$DEST.new/bin"
cp "$tmp/build/bin/llama-quantize" "$tmp/build/bin/llama-perplexity" "$DEST.new/bin/"
echo "$MARKER" >"$DEST.new/VERSION"
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
echo "ready: $DEST/bin (llama.cpp from llama-cpp-python $MARKER)"
