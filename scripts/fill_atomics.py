#!/usr/bin/env python3
"""Global atomics of the lists' fill, k_fill against k_fill_span, for one
query head of the benchmark's inputs (docs/perf.md CUDA v36).

With i.i.d. normal q and k every row's past blocks are equally likely, so
a row's top_k - 1 picks are drawn uniformly among its past blocks (with
replacement: rows have hundreds of past blocks or more, and a repeat
changes the count of distinct lists by a hair).  k_fill takes an atomic
per pick (less what warp matching shares, little at 128-key blocks);
k_fill_span one per distinct list in each span of FILL_ROWS rows.

  python3 scripts/fill_atomics.py [--rows 4096] [--seed 1]
"""
import argparse

import numpy as np

CASES = [  # name, tokens, block size, top_k
    ("32K blk128/top8", 32768, 128, 8),
    ("128K blk128/top8", 131072, 128, 8),
    ("512K blk128/top8", 524288, 128, 8),
    ("1M 16384-key blocks/top3", 1048576, 16384, 3),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=4096, help="rows per span (FILL_ROWS)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    for name, T, S, K in CASES:
        picks = spans = atomics = 0
        for s0 in range(0, T, args.rows):
            b = np.arange(s0, min(T, s0 + args.rows)) // S  # each row's own block
            draw = (rng.random((len(b), K - 1)) * np.maximum(b, 1)[:, None]).astype(np.int64)
            p = draw[np.arange(K - 1)[None, :] < np.minimum(K - 1, b)[:, None]]
            picks += p.size
            atomics += np.unique(p).size
            spans += 1
        print("%-26s %9d picks, %5d spans of %d rows: %8d global atomics, %6.1fx fewer"
              % (name, picks, spans, args.rows, atomics, picks / atomics))


if __name__ == "__main__":
    main()
