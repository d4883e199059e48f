#!/bin/bash
# Nsight Compute profile of the CUDA backend's kernels, in one call on the
# lent GPU machine (the device tool), from the repository root; carry
# .devdeps and .whl.  Static instruction counts (scripts/sass_loops.py)
# predicted more than the kernels gave (docs/perf.md, CUDA v9), so this
# asks the hardware what each kernel waits on.
#
#   bash scripts/device_profile.sh
#
# PROFILE="seqlen:batch:block:topk:KERNELS:MOBA_CUDA_KERNEL ..." (KERNELS:
# names joined by '|'; default below) runs moba-bench once per entry under
# `ncu --set full` for the named kernels' first launch each.  For every
# kernel it keeps the report's details page (prof-*.txt), raw metrics
# (prof-*-raw.csv) and SASS with per-instruction stall samples
# (prof-*-sass-KERNEL.csv) in $OUT/prof.tar.gz (the device tool returns
# at most 8 files), and prints a summary: duration, issue rate, pipe
# utilisation, occupancy, shared-memory bank conflicts and the stall
# reasons that take most of a warp's cycles.
set -u
source "$(dirname "$0")/device_env.sh" || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || exit 77
# PROF_BUILD=DIR profiles a build that a script before this one in the
# same call made (its moba-bench and CUDA module), without a second build.
b=${PROF_BUILD:-build-prof}
[ -n "${PROF_BUILD:-}" ] ||
    device_build "$PWD" "$PWD/$b" -Dcuda=enabled -Dopencl=disabled -Dhip=disabled -Dgpu_archs=90a ||
    exit 1
export MOBA_PLUGIN_DIR=$PWD/$b/backends/cuda MOBA_CACHE_DIR=/tmp/moba-cache
P=$(mktemp -d /tmp/moba-prof.XXXXXX)
default="131072:2:128:8:k_gate_mma|k_mma_kv_narrow|k_mma_own:default
262144:1:16384:3:k_wgmma_kv_ws:default 262144:1:16384:3:k_mma_kv_wide:mma"
for p in ${PROFILE:-$default}; do
    IFS=: read -r sl bt bl tk ks kern <<< "$p"
    tag=$sl-$bl-$kern
    n=$(tr '|' '\n' <<< "$ks" | wc -l)
    MOBA_CUDA_KERNEL=$kern timeout 400 ncu --set full --import-source no \
        --kernel-name "regex:$ks" --kernel-name-base function --launch-count "$n" \
        -f -o "$P/prof-$tag" "$b/tools/moba-bench" --quiet --backend cuda --seqlen "$sl" \
        --batch "$bt" --q-heads 16 --head-dim 128 --block-size "$bl" --top-k "$tk" --dtype bf16 \
        --no-dense --warmup 0 --iters 1 > "$P/prof-$tag.log" 2>&1 ||
        { echo "ncu $p failed:"; tail -5 "$P/prof-$tag.log"; continue; }
    ncu -i "$P/prof-$tag.ncu-rep" --page details > "$P/prof-$tag.txt" 2>&1
    ncu -i "$P/prof-$tag.ncu-rep" --page raw --csv > "$P/prof-$tag-raw.csv" 2>&1
    for k in ${ks//|/ }; do
        ncu -i "$P/prof-$tag.ncu-rep" --kernel-name "regex:$k" --kernel-name-base function \
            --page source --print-source sass --csv > "$P/prof-$tag-sass-$k.csv" 2>&1
    done
    echo "== $p"
    python3 - "$P/prof-$tag-raw.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head, units, data = rows[0], rows[1], rows[2:]
want = [
    ('gpu__time_duration.sum', 'ms'),
    ('sm__cycles_elapsed.avg', 'cycles'),
    ('smsp__issue_active.avg.pct_of_peak_sustained_active', '% issue'),
    ('sm__inst_executed.avg.per_cycle_active', 'IPC/SM'),
    ('sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active', '% tensor'),
    ('sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active', '% hmma'),
    ('sm__inst_executed_pipe_tensor_op_gmma.avg.pct_of_peak_sustained_active', '% gmma inst'),
    ('sm__inst_executed_pipe_alu.avg.pct_of_peak_sustained_active', '% alu'),
    ('sm__inst_executed_pipe_fma.avg.pct_of_peak_sustained_active', '% fma'),
    ('sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active', '% xu'),
    ('sm__inst_executed_pipe_lsu.avg.pct_of_peak_sustained_active', '% lsu'),
    ('sm__warps_active.avg.per_cycle_active', 'warps/SM'),
    ('smsp__warps_eligible.avg.per_cycle_active', 'eligible/smsp'),
    ('l1tex__data_pipe_lsu_wavefronts_mem_shared.sum.pct_of_peak_sustained_elapsed', '% smem'),
    ('l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum', 'ld confl'),
    ('l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum', 'st confl'),
    ('gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed', '% dram'),
    ('lts__t_sector_hit_rate.pct', '% L2 hit'),
    ('launch__registers_per_thread', 'regs'),
]
def num(s):
    try:
        return float(s.replace(',', ''))
    except ValueError:
        return None
col = {h: i for i, h in enumerate(head)}
for r in data:
    name = r[col['Kernel Name']].split('(')[0].split('<')[0].replace('void ', '')
    out = []
    for m, label in want:
        if m in col and num(r[col[m]]) is not None:
            v = num(r[col[m]])
            if m == 'gpu__time_duration.sum':
                v *= {'nsecond': 1e-6, 'ns': 1e-6, 'usecond': 1e-3, 'us': 1e-3,
                      'msecond': 1.0, 'ms': 1.0, 'second': 1e3, 's': 1e3}[units[col[m]]]
            out.append('%s %.4g' % (label, v))
    print(name + ':', ', '.join(out))
    # Stall reasons per issued instruction: the WarpStateStats section's
    # metric names, with a fallback for other ncu versions.
    st = {}
    for pre, suf in (('smsp__average_warps_issue_stalled_', '_per_issue_active.ratio'),
                     ('smsp__average_warp_latency_issue_stalled_', '.ratio')):
        for h, i in col.items():
            if h.startswith(pre) and h.endswith(suf) and num(r[i]):
                st.setdefault(h[len(pre):-len(suf)], num(r[i]))
        if st:
            break
    top = sorted(st.items(), key=lambda kv: -kv[1])
    print('   stalls per issued instruction (sum %.2f):' % sum(st.values()),
          ', '.join('%s %.2f' % kv for kv in top[:9]))
missing = [m for m, _ in want if m not in col]
if missing:
    print('   (not in this report: %s)' % ', '.join(missing))
PY
done
(cd "$P" && tar -czf "$OUT/prof.tar.gz" --exclude="*.ncu-rep" .) && ls -l "$OUT/prof.tar.gz"
