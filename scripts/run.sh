#!/bin/sh
# One entry point for a fresh Debian/Ubuntu machine:
#   sh scripts/run.sh bench [moba-bench flags]   set up, build, benchmark (default backend)
#   sh scripts/run.sh test                       set up, build, run the whole test suite,
#                                                then again under ASan + UBSan
#   sh scripts/run.sh setup                      only install dependencies and build
#   sh scripts/run.sh cross-arm64                cross-build for arm64 (NEON kernels) and run
#                                                the kernel check under qemu-user
# Dependencies come from apt-get (as root, or through sudo).  GPU toolkits are
# optional: the CUDA module is built when nvcc is found, HIP when hipcc is.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cmd=${1:-test}
[ $# -gt 0 ] && shift

# nvcc usually lives outside PATH.
for d in /usr/local/cuda/bin /opt/cuda/bin; do
    [ -x "$d/nvcc" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$PATH:$d" ;; esac
done
export PATH

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "run.sh: need root or sudo to install packages: $*" >&2; exit 1; fi
}

install_deps() {
    need="meson ninja-build pkg-config gcc libc6-dev libcmocka-dev ocl-icd-opencl-dev opencl-headers pocl-opencl-icd python3"
    missing=""
    for p in $need; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    # Optional: the HIP toolchain (Debian 12+/Ubuntu 24.04+), for the HIP module.
    for p in hipcc libamdhip64-dev; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p?"
    done
    [ -z "$missing" ] && return 0
    echo "run.sh: installing:$missing" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    req=""; opt=""
    for p in $missing; do case "$p" in *\?) opt="$opt ${p%\?}" ;; *) req="$req $p" ;; esac; done
    [ -n "$req" ] && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $req
    for p in $opt; do
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$p" \
            || echo "run.sh: optional package $p not available; its backend is not built" >&2
    done
}

build() { # build dir, extra meson args...
    dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@"
    fi
    ninja -C "$dir"
}

case "$cmd" in
setup)
    install_deps
    build build
    ;;
bench)
    install_deps
    build build
    exec ./build/tools/moba-bench "$@"
    ;;
test)
    install_deps
    build build
    meson test -C build --print-errorlogs --num-processes 2
    # The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
    # GPU modules are left out here: nothing can run them without a GPU and
    # their (slow) compile is already checked by the build above.
    build build-san -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbuildtype=debugoptimized -Dcuda=disabled -Dhip=disabled
    meson test -C build-san --print-errorlogs --num-processes 2
    # One closing line over both runs, from meson's machine-readable logs.
    python3 - build/meson-logs/testlog.json build-san/meson-logs/testlog.json <<'PY'
import json, sys
n = {"OK": 0, "FAIL": 0, "SKIP": 0}
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line).get("result", "FAIL")
        n["OK" if r == "OK" else "SKIP" if r == "SKIP" else "FAIL"] += 1
print("tests: %d passed, %d failed, %d skipped" % (n["OK"], n["FAIL"], n["SKIP"]))
PY
    ;;
cross-arm64)
    for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static meson ninja-build; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="${missing:-} $p"
    done
    if [ -n "${missing:-}" ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    fi
    build build-arm64 --cross-file cross/aarch64-linux-gnu.txt -Dtests=false \
        -Dcuda=disabled -Dhip=disabled -Dopencl=disabled
    meson test -C build-arm64 --print-errorlogs --num-processes 2
    ;;
*)
    echo "usage: sh scripts/run.sh bench|test|setup|cross-arm64 [moba-bench flags]" >&2
    exit 2
    ;;
esac
