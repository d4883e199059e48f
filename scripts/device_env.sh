# Sourced by the scripts that run on the lent GPU machine (device_check.sh,
# cpu_device_check.sh, device_ab.sh, device_profile.sh), from the
# repository root: sets $OUT (the device tool's output folder, else
# /tmp/moba-out), unpacks the carried Debian packages (.devdeps/env.sh, when
# carried), puts CUDA on PATH, installs meson from the carried wheel ($WHL,
# default .whl) when the machine has none, and defines device_build.
# Returns non-zero when meson cannot be had.
OUT=${OUT:-/tmp/moba-out}
mkdir -p "$OUT"
[ -f .devdeps/env.sh ] && source .devdeps/env.sh
export PATH=/usr/local/cuda/bin:$PATH
if ! command -v meson >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site "${WHL:-.whl}"/meson-*.whl ||
        return 1
    export PYTHONPATH=/tmp/site
    mkdir -p /tmp/bin && printf '#!/bin/sh\nexec python3 -m mesonbuild.mesonmain "$@"\n' > /tmp/bin/meson
    chmod +x /tmp/bin/meson && export PATH=/tmp/bin:$PATH
fi

# device_build SRC BUILD OPTION...: configures the absolute build dir BUILD
# from the source tree SRC with exactly OPTIONS (--reconfigure when BUILD
# exists: a dir left by another script on a warm machine must not keep its
# options, and meson 1.0 returns 0 for a plain setup of an existing dir),
# builds it with logs in $OUT/setup-NAME.log and $OUT/build-NAME.log, and
# prints the time and the warning count.  Returns non-zero on failure,
# after the log's tail or errors.
device_build() {
    local src=$1 bd=$2 n r= s
    shift 2
    n=$(basename "$bd") s=$(date +%s)
    [ -d "$bd" ] && r=--reconfigure
    (cd "$src" && meson setup $r "$bd" "$@") > "$OUT/setup-$n.log" 2>&1 ||
        { tail -30 "$OUT/setup-$n.log"; return 1; }
    ninja -C "$bd" > "$OUT/build-$n.log" 2>&1 ||
        { grep -B3 -A20 'error' "$OUT/build-$n.log" | head -60; return 1; }
    echo "$n ($src): built in $(( $(date +%s) - s )) s, warnings: $(grep -c 'warning' "$OUT/build-$n.log")"
}

# device_cuda_only NAME: the lean build the timing scripts share (the CUDA
# module alone, sm_90a) in $PWD/NAME, as $B, with MOBA_PLUGIN_DIR and
# MOBA_CACHE_DIR exported.  Returns 77 where there is no NVIDIA GPU (after
# nvidia-smi's complaint), 1 when the build fails.
device_cuda_only() {
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || return 77
    B=$PWD/$1
    device_build "$PWD" "$B" -Dcuda=enabled -Dopencl=disabled -Dhip=disabled -Dgpu_archs=90a ||
        return 1
    export MOBA_CACHE_DIR=/tmp/moba-cache MOBA_PLUGIN_DIR=$B/backends/cuda
}
