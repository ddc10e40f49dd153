#!/usr/bin/env bash
# Installs the build (meson install into a temporary folder), then builds examples/generate.c
# with nothing but `pkg-config --cflags --libs altup` and checks that it generates the same
# text as `altup run --temp 0` from the shipped model: once as it is, once under
# AddressSanitizer + UBSan. Run by meson test with the build and source folders as arguments.
set -euo pipefail
build=$1 source=$2 sanitized=${3:-no}
if [[ -n ${ALTUP_CLI_WRAPPER:-} ]]; then
  echo "SKIP: a cross build's library does not run on this machine"
  exit 77
fi
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
pcdir=$(dirname "$(find "$dest" -name altup.pc | head -1)")
[[ -f $pcdir/altup.pc ]] || { echo "FAIL: no altup.pc installed"; exit 1; }
for f in include/altup.h bin/altup; do
  [[ -e $(find "$dest" -path "*/$f" | head -1) ]] || { echo "FAIL: $f not installed"; exit 1; }
done
find "$dest" -name 'libaltup.a' | grep -q . || { echo "FAIL: libaltup.a not installed"; exit 1; }
# The installed program has no default model (the shipped one lives in the source tree): it
# says so instead of reaching into a folder that may be gone.
installed=$(find "$dest" -path '*/bin/altup' | head -1)
if LD_LIBRARY_PATH=$(dirname "$(find "$dest" -name 'libaltup.so' | head -1)") "$installed" run -n 1 \
  >/dev/null 2>"$dest/err"; then
  echo "FAIL: the installed altup ran without -m"
  exit 1
fi
grep -q "no model: pass -m" "$dest/err" || { echo "FAIL: the installed altup said:"; cat "$dest/err"; exit 1; }
# pkg-config with the install's own .pc and no other (PKG_CONFIG_LIBDIR replaces the system's
# search path: altup.pc must not need any other package's .pc); the sysroot maps its paths
# into the temporary folder.
export PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_SYSROOT_DIR=$dest
flags=$(pkg-config --cflags --libs altup)
libdir=$(dirname "$(find "$dest" -name 'libaltup.so' | head -1)")
model=$source/demo/kjv-altup-k2.gguf
want=$("$build/cli/altup" run -m "$model" -p "And God said" -n 24 --temp 0 -t 1 2>/dev/null)
variants=(plain asan)
# A library built with the sanitizers can only be loaded by a program built with them.
[[ $sanitized == yes ]] && variants=(asan)
passed=0
for variant in "${variants[@]}"; do
  extra=()
  [[ $variant == asan ]] && extra=(-fsanitize=address,undefined -fno-omit-frame-pointer)
  # shellcheck disable=SC2086
  cc -std=c99 -Wall -Wextra -Werror "${extra[@]}" "$source/examples/generate.c" $flags -o "$dest/generate-$variant"
  got=$(LD_LIBRARY_PATH=$libdir ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 \
    "$dest/generate-$variant" "$model" "And God said" 24)
  if [[ $got != "$want" ]]; then
    echo "FAIL ($variant): the example printed"
    printf '%s\n' "$got"
    echo "but altup run --temp 0 printed"
    printf '%s\n' "$want"
    exit 1
  fi
  echo "ok ($variant): $got"
  passed=$((passed + 1))
done
echo "install: $passed passed, 0 failed"
