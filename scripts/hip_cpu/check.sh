#!/bin/bash
# The HIP backend's kernels, run on this CPU through ROCm's header-only
# HIP-CPU runtime (64-lane warps as fibers that switch only at barriers),
# then the conformance suite, unit-core and backend-select against that
# module.  A developer's check, not a CI test: there is no AMD GPU here,
# HIP-CPU is no Debian package, and CI reaches no GitHub.
#
#   git clone https://github.com/ROCm/HIP-CPU /path/to/HIP-CPU
#   apt-get install libtbb-dev            # HIP-CPU's parallel algorithms
#   HIP_CPU_DIR=/path/to/HIP-CPU bash scripts/hip_cpu/check.sh [--trace] [--control] [--ubsan] [--reverse]
#
# It builds this working tree's core library (meson, no GPU modules) and
# a libmoba-hip.so from backends/cuda's sources with g++ -DMOBA_USE_HIP
# (vendor_hip.h: the portable kernels only), under WORK (default
# /tmp/moba-hipcpu).  Two things differ from hipcc's build, both in
# files here: the <<<>>> launches become hipLaunchKernelGGL
# (rewrite_launches.py, on a copy), and shim.h fills HIP-CPU's gaps
# (__uint_as_float, integer min/max, __expf/__logf, __forceinline__).
#   --trace    also a module that counts its launches per kernel (which
#              kernels ran), and conformance on it
#   --control  also a module without the barrier between k_simt_own's K/V
#              load and its use: its test_shapes_short must FAIL, which
#              shows that this check can see a missing barrier
#   --ubsan    also a module built with -fsanitize=undefined (no recovery:
#              signed overflow, shifts, and indices past a sized array,
#              __shared__ ones included), and conformance on it.  Not
#              ASan: HIP-CPU's fibers switch stacks without telling it,
#              and it then reports frees of memory it did not allocate.
#   --reverse  also a module on a copy of HIP-CPU whose blocks run their
#              threads from the highest threadIdx down (reverse_ids.py),
#              and conformance on it: HIP-CPU runs thread 0 first, so
#              between barriers a thread always sees every lower thread's
#              work done, and a missing barrier where a thread reads what
#              a higher one writes stays hidden in the plain run
# What HIP-CPU cannot run, though AMD's hardware would: its warp shuffles
# are barriers of the whole block (a shuffle that only some warps reach
# never completes), and its __shfl_up / __shfl bound the source lane by the
# width as if every group were the first (below 64 lanes, every group but
# the first gets its own value back); its __shfl_xor is right.  Portable
# kernels therefore shuffle with MOBA_SHFL_XOR, in every thread alike.
# Exit 0 only if every run passed (a module that does not load makes
# conformance SKIP, 77: a failure here) and the control failed.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
here=$src/scripts/hip_cpu
hcpu=${HIP_CPU_DIR:?set HIP_CPU_DIR to a HIP-CPU checkout (https://github.com/ROCm/HIP-CPU)}
work=${WORK:-/tmp/moba-hipcpu}
jobs=${JOBS:-2}
trace=0 control=0 ubsan=0 reverse=0
for a in "$@"; do
    case "$a" in
    --trace) trace=1 ;;
    --control) control=1 ;;
    --ubsan) ubsan=1 ;;
    --reverse) reverse=1 ;;
    *) echo "usage: HIP_CPU_DIR=DIR check.sh [--trace] [--control] [--ubsan] [--reverse]" >&2; exit 2 ;;
    esac
done
[ -f "$hcpu/include/hip/hip_runtime.h" ] || { echo "check.sh: no include/hip/hip_runtime.h in $hcpu" >&2; exit 2; }
[ -e /usr/include/tbb/tbb.h ] || [ -e /usr/include/oneapi/tbb.h ] ||
    { echo "check.sh: HIP-CPU needs TBB: apt-get install libtbb-dev" >&2; exit 2; }
mkdir -p "$work" || exit 2

echo "== core library: $work/build"
if [ ! -f "$work/build/build.ninja" ]; then
    meson setup "$work/build" "$src" -Dcuda=disabled -Dhip=disabled -Dopencl=disabled \
        > "$work/meson.log" 2>&1 || { tail -20 "$work/meson.log"; exit 1; }
fi
ninja -C "$work/build" -j"$jobs" > "$work/ninja.log" 2>&1 || { tail -30 "$work/ninja.log"; exit 1; }

# The module's sources: backends/cuda/meson.build's list, as hipcc builds them.
names=$(python3 - "$src/backends/cuda/meson.build" <<'PY'
import re, sys
m = re.search(r"gpu_source_names = \[(.*?)\]", open(sys.argv[1]).read(), re.S)
print(' '.join(re.findall(r"'([^']+\.cu)'", m.group(1))))
PY
)
[ -n "$names" ] || { echo "check.sh: no gpu_source_names in backends/cuda/meson.build" >&2; exit 1; }

# module NAME [FLAGS]: the sources copied by `copy NAME` into
# $work/NAME/libmoba-hip.so; FLAGS go to the compiles and the link
module() {
    local flags=${2:-} s=$work/$1-src/backends/gpu o=$work/$1-obj p=$work/$1
    mkdir -p "$o" "$p"
    echo "== module $p/libmoba-hip.so"
    export s o flags hcpu here src
    printf '%s\n' $names | xargs -P"$jobs" -I{} bash -c '
        n={}; obj=$o/${n%.cu}.o
        g++ -std=c++17 -x c++ -O2 -g0 -fPIC -fvisibility=hidden -DMOBA_USE_HIP $flags \
            -I"$hcpu/include" -include "$here/shim.h" -I"$s" -I"$src" -I"$src/include" \
            -I"$work/build" -Wno-attributes -c "$s/$n" -o "$obj" 2> "$obj.log" ||
            { cat "$obj.log"; exit 255; }' || return 1
    g++ -shared -fPIC -Wl,--no-undefined $flags -o "$p/libmoba-hip.so" \
        $(for n in $names; do echo "$o/${n%.cu}.o"; done) -ltbb -lpthread || return 1
}
# copy NAME: backends/cuda's sources into $work/NAME-src/backends/gpu,
# launches rewritten, beside a link to core/ (gpu_internal.h includes
# ../../core/backend.h)
copy() {
    local d=$work/$1-src/backends/gpu
    rm -rf "$work/$1-src" && mkdir -p "$d" && ln -s "$src/core" "$work/$1-src/core" &&
        cp "$src"/backends/cuda/*.cu "$src"/backends/cuda/*.cuh "$src"/backends/cuda/*.h "$d/" &&
        python3 "$here/rewrite_launches.py" "$d"/*.cu "$d"/*.cuh
}

failed=
# run LABEL PLUGIN_DIR PROGRAM ARGS...: passes only with exit 0
run() {
    local label=$1 dir=$2; shift 2
    local t0=$SECONDS log=$work/$label.log
    MOBA_PLUGIN_DIR=$dir timeout 3000 "$@" > "$log" 2>&1
    local rc=$?
    grep -E '^backend |^\[  (PASSED|FAILED) |^\[  FAILED  \] test|^summary|HIPCPU_TRACE' "$log"
    echo "$label: rc=$rc, $((SECONDS - t0)) s (log $log)"
    [ $rc = 0 ] || failed="$failed $label"
}

copy hip 2> "$work/rewrite.log" && module hip || exit 1
b=$work/build/tests
run conformance-hip "$work/hip" "$b/conformance" hip "$src/tests/vectors"
run unit-core "$work/hip" "$b/unit-core"
run backend-select "$work/hip" "$b/backend-select"
if [ $trace = 1 ]; then
    copy trace 2>> "$work/rewrite.log" && module trace -DHIPCPU_TRACE || exit 1
    run conformance-hip-trace "$work/trace" "$b/conformance" hip "$src/tests/vectors"
fi
if [ $ubsan = 1 ]; then
    copy ubsan 2>> "$work/rewrite.log" &&
        module ubsan "-O1 -g -fsanitize=undefined -fno-sanitize-recover=all" || exit 1
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        run conformance-hip-ubsan "$work/ubsan" "$b/conformance" hip "$src/tests/vectors"
fi
if [ $reverse = 1 ]; then
    rev=$work/hipcpu-reverse
    rm -rf "$rev" && mkdir -p "$rev/src" && cp -r "$hcpu/include" "$rev/" &&
        cp -r "$hcpu/src/include" "$rev/src/" && ln -s "$(cd "$hcpu" && pwd)/external" "$rev/external" &&
        python3 "$here/reverse_ids.py" "$rev" || exit 1
    copy reverse 2>> "$work/rewrite.log" || exit 1
    hcpu0=$hcpu hcpu=$rev
    module reverse || exit 1
    hcpu=$hcpu0
    run conformance-hip-reverse "$work/reverse" "$b/conformance" hip "$src/tests/vectors"
fi
if [ $control = 1 ]; then
    copy control 2>> "$work/rewrite.log" || exit 1
    python3 - "$work/control-src/backends/gpu/attend_simt.cuh" <<'PY' || exit 1
import sys
p = sys.argv[1]
s = open(p).read()
old = "simt_load_kv<DT, D>(k, v, sq.start + u0, a.Hk, kh, nk, ks, vs);\n        __syncthreads();\n"
assert s.count(old) == 1, "check.sh --control: k_simt_own's load and barrier moved; update the control"
open(p, 'w').write(s.replace(old, "simt_load_kv<DT, D>(k, v, sq.start + u0, a.Hk, kh, nk, ks, vs);\n"))
PY
    module control || exit 1
    MOBA_PLUGIN_DIR=$work/control MOBA_TEST_FILTER=test_shapes_short timeout 600 \
        "$b/conformance" hip "$src/tests/vectors" > "$work/control.log" 2>&1
    rc=$?
    grep -E '^\[  (PASSED|FAILED) |problems' "$work/control.log" | head -5
    if [ $rc = 1 ]; then echo "control (barrier removed): failed, as it must"
    else echo "control (barrier removed): rc=$rc, expected 1"; failed="$failed control"; fi
fi
[ -z "$failed" ] && { echo "hip_cpu/check.sh: all passed"; exit 0; }
echo "hip_cpu/check.sh: FAILED:$failed"
exit 1
