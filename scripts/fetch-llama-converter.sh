#!/usr/bin/env bash
# llama.cpp's own Hugging Face -> GGUF converter, as PyPI ships it: the llama-cpp-python sdist
# vendors llama.cpp's sources, and its convert_hf_to_gguf.py (with the conversion/ package and
# gguf-py) is extracted to .llama-converter/. It imports torch, so it runs in .venv-train
# (scripts/bootstrap-train.sh). Used only by tests/python/test_llama_converter.py, which is
# skipped (not passed) without it. Nothing is compiled.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}  # the version scripts/bootstrap-compare.sh builds
DEST=.llama-converter
if [[ -f $DEST/VERSION && $(cat $DEST/VERSION) == "$VERSION" ]]; then
  echo "ready: $DEST (llama-cpp-python $VERSION)"
  exit 0
fi
[[ -x .venv-train/bin/python ]] || scripts/bootstrap-train.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-llama-converter: downloading the llama-cpp-python $VERSION sdist from PyPI (~75 MB)"
.venv-train/bin/python -m pip download -q --disable-pip-version-check --no-binary llama-cpp-python --no-deps \
  "llama-cpp-python==$VERSION" -d "$tmp"
src="llama_cpp_python-$VERSION/vendor/llama.cpp"
tar xzf "$tmp/llama_cpp_python-$VERSION.tar.gz" -C "$tmp" --wildcards "$src/convert_hf_to_gguf.py" \
  "$src/conversion/*" "$src/gguf-py/*"
rm -rf "$DEST.new"
mv "$tmp/$src" "$DEST.new"
echo "$VERSION" >"$DEST.new/VERSION"
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
echo "ready: $DEST (llama-cpp-python $VERSION)"
