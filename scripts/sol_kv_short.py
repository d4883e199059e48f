#!/usr/bin/env python3
"""Speed-of-light trees of k_wgmma_kv_short, for timing only (wrong results).

Usage: sol_kv_short.py TREE q|p|both|kv|all

Patches TREE (a copy of the repository, never the checkout you build the
library from) so that every step of k_wgmma_kv_short gathers its Q rows
from (q), and/or stores its partial O to (p), a fixed 64 rows per CTA:
with ~400 CTAs that is 6.5 MB, which stays in the L2, so the kernel runs
without its Q gathers' and partials' HBM traffic.  The lists, entries and
lse stores are left as they are, and each patched address still depends
on the entry it replaces, so that the bookkeeping loads are not dropped.
kv: a CTA loads K and V for its first step only and keeps them for every
list after (no block reloads, no waits on them); all: both and kv.
The fixed rows are rows 0 .. 64 x CTAs of Q and of the partials, so run
such a tree only on shapes with more rows x query heads than that (~25K
on an H100; the 128K and 512K benchmarks have millions).
docs/perf.md (CUDA v28, v51) compares such trees with main under ncu.
Exits non-zero if the source no longer has the lines it patches, or if
TREE is a git checkout (copy it first: git archive HEAD | tar -x -C TREE).
"""
import os
import sys


def fixed_row(h):
    # Row r0 + 8 h of the thread's step, in a 64-row set of its own CTA.
    return ('(int)(blockIdx.x * 64u + (threadIdx.x / 32u) * 16u + (threadIdx.x % 32u) / 4u'
            ' + 8u * ' + h + ')')


def patch(s, old, new):
    if old not in s:
        sys.exit('sol_kv_short.py: not found (the kernel changed?): ' + old)
    return s.replace(old, new)


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ('q', 'p', 'both', 'kv', 'all'):
        sys.exit(__doc__)
    tree, mode = sys.argv[1], sys.argv[2]
    if os.path.exists(os.path.join(tree, '.git')):
        sys.exit('sol_kv_short.py: ' + tree + ' is a git checkout; patch a copy of it')
    path = tree + '/backends/cuda/attend_wgmma.cuh'
    s = open(path).read()
    if mode in ('q', 'both', 'all'):
        s = patch(s, 'const unsigned short *p = q + (size_t)gpu_entry_row(a, e) * D + (t % 2) * 64;',
                  'const int fr = ' + fixed_row('(t / 2)') + ' + (gpu_entry_row(a, e) == -7);\n'
                  '        const unsigned short *p = q + (size_t)fr * D + (t % 2) * 64;')
        s = patch(s, 'const uint4 *p = (const uint4 *)(q + (size_t)gpu_entry_row(a, pe[h]) * D) + t;',
                  'const int fr = ' + fixed_row('h') + ' + (gpu_entry_row(a, pe[h]) == -7);\n'
                  '        const uint4 *p = (const uint4 *)(q + (size_t)fr * D) + t;')
    if mode in ('p', 'both', 'all'):
        s = patch(s, 'uint4 *p = (uint4 *)((unsigned short *)a.part_o + (size_t)ps[h] * D) + t;',
                  'const int fp = ' + fixed_row('h') + ' * (a.K - 1) + (ps[h] == -7);\n'
                  '        uint4 *p = (uint4 *)((unsigned short *)a.part_o + (size_t)fp * D) + t;')
    if mode in ('kv', 'all'):
        s = patch(s, 'const bool nblk = xn.any && xn.lst != x.lst;',
                  'const bool nblk = xn.any && xn.lst != x.lst && xn.lst == -7;')
    open(path, 'w').write(s)
    print('sol_kv_short.py: patched', path, 'for', mode)


if __name__ == '__main__':
    main()
