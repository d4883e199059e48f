#!/bin/bash
# One call on the lent machine's host CPU (the device tool) for the CPU
# backend: build without GPU backends, cpu-check and the conformance suite
# for every CPU variant the host runs, cpu-bench per variant, and the
# comparison with PyTorch's CPU SDPA.  Needs cmocka and meson (carried:
# .devdeps and .whl; scripts/device_env.sh sets them up).  Logs go to $OUT.
#   usage: scripts/cpu_device_check.sh [LENS, default 8192,32768]
set -u
LENS=${1:-8192,32768}
source "$(dirname "$0")/device_env.sh" || exit 1
grep -m1 'model name' /proc/cpuinfo
echo "amx flags: $(grep -m1 -o 'amx_[a-z0-9]*' /proc/cpuinfo | tr '\n' ' ')"
b=build-cpu
device_build "$PWD" "$PWD/$b" -Dcuda=disabled -Dhip=disabled -Dopencl=disabled || exit 1
for isa in avx2 avx512 amx; do
    MOBA_CPU_ISA=$isa timeout 120 ./$b/tools/cpu-check > "$OUT/check-$isa.log" 2>&1
    echo "cpu-check $isa rc=$?: $(tail -1 "$OUT/check-$isa.log")"
    grep -m3 FAIL "$OUT/check-$isa.log"
done
timeout 200 meson test -C $b --suite cpu --suite unit --num-processes 8 --print-errorlogs \
    > "$OUT/test.log" 2>&1
echo "meson test rc=$?"; grep -E '^ *[0-9]+/[0-9]+ ' "$OUT/test.log"
for n in 8192 32768; do
    for isa in avx512 amx; do
        for sk in "512 3" "128 8"; do
            MOBA_CPU_ISA=$isa timeout 60 ./$b/tools/cpu-bench $n 8 8 128 $sk bf16 16 3 2>&1 |
                tee -a "$OUT/cpu-bench.log"
        done
    done
done
PYTHONUNBUFFERED=1 timeout 240 python3 tools/bench_cpu_vs_torch.py $b/libmoba.so --threads 16 \
    --reps 3 --lens "$LENS" 2>&1 | tee "$OUT/torch.log" | grep -v Warning
