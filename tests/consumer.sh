#!/bin/sh
# consumer.sh BUILD_DIR SOURCE_DIR [B_SANITIZE]
# Installs the build into a staging tree, then compiles and runs the C
# example of README.md against it with nothing but pkg-config, as a user
# of the installed library would.  Exit 77 (skip) only when pkg-config or a
# C compiler is missing.
set -u
build=$1
src=$2
san=${3:-none}
cc=${CC:-cc}

command -v pkg-config >/dev/null 2>&1 || { echo "SKIP: no pkg-config"; exit 77; }
command -v "$cc" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($cc)"; exit 77; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
stage=$tmp/stage

meson install -C "$build" --destdir "$stage" --no-rebuild >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"; echo "FAIL: meson install"; exit 1; }

pc=$(find "$stage" -name moba.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: no moba.pc installed"; exit 1; }
lib=$(find "$stage" -name 'libmoba.so*' | head -n 1)
[ -n "$lib" ] || { echo "FAIL: no libmoba.so installed"; exit 1; }
libdir=$(dirname "$lib")

# The example between the markers, without its ``` fence lines.
awk '/<!-- example:begin -->/ { on = 1; next }
     /<!-- example:end -->/ { on = 0 }
     on && !/^```/' "$src/README.md" >"$tmp/consumer.c"
[ -s "$tmp/consumer.c" ] || { echo "FAIL: no example in $src/README.md"; exit 1; }

# pkgconf prefixes -I/-L with the sysroot (TOOLCHAIN_NOTES gotcha 11).
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$stage"
flags=$(pkg-config --cflags --libs moba) || { echo "FAIL: pkg-config moba"; exit 1; }
echo "pkg-config --cflags --libs moba: $flags"
# A sanitized libmoba needs the sanitizer runtime first in the program.
extra=
[ "$san" != none ] && extra="-fsanitize=$san"
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Werror $extra "$tmp/consumer.c" $flags -o "$tmp/consumer" || {
    echo "FAIL: the README example does not compile against the installed library"; exit 1; }

LD_LIBRARY_PATH="$libdir" MOBA_PLUGIN_DIR="$libdir/moba" MOBA_BACKEND=cpu \
    "$tmp/consumer" || { echo "FAIL: the README example exited with $?"; exit 1; }
echo "PASS"
