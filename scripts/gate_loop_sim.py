#!/usr/bin/env python3
"""Counts, on random scores, how often k_gate_mma's candidate loop runs per
warp and 64-centroid tile (the warp loops as often as its busiest lane has
candidates above the row floor), and how that count moves with two changes
to the rule, without a GPU.  Needs numpy.

    python3 scripts/gate_loop_sim.py [NB]     # NB: past blocks of every row

Model (backends/cuda/gate_mma.cuh, one selection pass of top 8): each of a
row's 4 lanes owns 16 of a tile's 64 columns (the mma C layout) and keeps
its own top 8; the row floor is the largest of the three certificates of
gtc_row_floor (best lane 8th, second-largest lane 4th, smallest lane 2nd),
and in the first tile at least the least over the quad of each lane's 2nd
best (gtc_first_floor); a warp holds 8 rows per half (hr) and runs the two
halves' loops one after the other.  Variants: 'merged' runs one loop over
both halves (the warp then loops max(c0 + c1) times instead of max(c0) +
max(c1)); 'exact' takes the row's exact 8th best so far as the floor;
'deferredT' appends a lane's candidates to a buffer (a cheap loop turn)
and inserts them into its list every T tiles (the warp looping as often
as its fullest buffer), so that the lanes' counts even out between
insertions, while the floor only sees the lists.  Each line also prints
a model of the loop's instructions per warp-tile: ~60 per insertion turn
(key, exact test, the 8-step 64-bit network), ~10 per append turn, ~52
per deferred insertion turn (the same with the key read back); 'merged'
turns cost two networks, as built in CUDA v13 (measured 0.90x).
'carryK' (run_carry) is the rule tried in CUDA v19 (measured 0.89x): the
warp turns only while a lane has more than K candidates pending, and the
rest wait for the next tile.  'twopass' scores every tile twice: first
for a per-row floor (the 8th largest of 16 column-class maxima), then as
'current' with that floor too; its model adds the first pass's ~175 instructions per warp-tile.
(CUDA v15 brought a turn to 59 instructions; the model keeps 60.)
"""
import sys

import numpy as np

K, BC = 8, 64


def lane_cols(t):
    return [8 * n + 2 * t + i for n in range(8) for i in range(2)]


def kth(lst, k):
    return lst[k - 1] if len(lst) >= k else -np.inf


def row_floor(ls, w=K):
    """gtc_row_floor over a row's 4 lane lists of w."""
    fours = sorted((kth(l, 4) for l in ls), reverse=True)
    return max(max(kth(l, w) for l in ls), fours[1], min(kth(l, 2) for l in ls))


def first_floor(s, r, cols):
    """The first tile's floor: the least lane 2nd best valid score."""
    return min(kth(sorted(s[r, c], reverse=True), 2) for c in cols)


def offer(l, x, w=K):
    """x into a lane's descending list of w; whether it went in."""
    if len(l) < w or x > l[-1]:
        l.append(x)
        l.sort(reverse=True)
        del l[w:]
        return True
    return False


def run(variant, nb, rows=16, reps=20, seed=1):
    T = int(variant[8:]) if variant.startswith('deferred') else 1
    rng = np.random.default_rng(seed)
    iters = tiles = inserts = cost = 0
    for _ in range(reps):
        s = rng.standard_normal((rows, nb))
        if variant == 'twopass':
            # A first pass over every tile keeps, per row, the largest score
            # of 16 column classes (lane t, n & 1, parity: one FMNMX per
            # score); 8 distinct candidates score at or above the 8th
            # largest of those maxima, so it is a floor from the start.
            c = np.arange(nb) % BC
            cls = ((c % 8) // 2) * 4 + ((c // 8) % 2) * 2 + c % 2
            floor = [sorted((s[r, cls == k].max() for k in range(16) if (cls == k).any()),
                            reverse=True)[K - 1] for r in range(rows)]
        lists = [[[] for _ in range(4)] for _ in range(rows)]
        bufs = [[[] for _ in range(4)] for _ in range(rows)]
        nt = (nb + BC - 1) // BC
        for it in range(nt):
            j0 = it * BC
            counts = np.zeros((rows, 4), int)
            for r in range(rows):
                ls = lists[r]
                if variant == 'exact':
                    f = kth(sorted((x for l in ls for x in l), reverse=True), K)
                else:
                    f = row_floor(ls)
                if variant == 'twopass':
                    f = max(f, floor[r])
                cols = [[j0 + c for c in lane_cols(t) if j0 + c < nb] for t in range(4)]
                if it == 0:
                    f = max(f, first_floor(s, r, cols))
                for t in range(4):
                    for j in cols[t]:
                        x = s[r, j]
                        if x < f:
                            continue
                        counts[r, t] += 1
                        l = ls[t]
                        if T > 1:
                            if len(l) < K or x > l[-1]:
                                bufs[r][t].append(x)
                        else:
                            inserts += offer(l, x)
            for w0 in range(0, rows, 16):
                c0, c1 = counts[w0:w0 + 8], counts[w0 + 8:w0 + 16]
                n = (c0 + c1).max() if variant == 'merged' else c0.max() + c1.max()
                iters += n
                cost += n * (10 if T > 1 else 120 if variant == 'merged' else 60)
                # the first pass: 64 HMMA, 32 LDSM, ~27 NOP, 32 FMNMX, ~20 more
                cost += 175 if variant == 'twopass' else 0
                tiles += 1
            if T > 1 and ((it + 1) % T == 0 or it == nt - 1):
                for w0 in range(0, rows, 16):
                    for h in (0, 8):
                        m = 0
                        for r in range(w0 + h, w0 + h + 8):
                            for t in range(4):
                                l = lists[r][t]
                                m = max(m, len(bufs[r][t]))
                                for x in bufs[r][t]:
                                    inserts += offer(l, x)
                                bufs[r][t] = []
                        cost += m * 52
    return iters / tiles, inserts / (reps * rows), cost / tiles


def run_carry(nb, keep, W=K, rows=16, reps=20, seed=1):
    """The carry rule (built in CUDA v19 and measured slower, 0.89x, so not
    in k_gate_mma: the model counts turns, not what a turn came to cost
    there; docs/perf.md): the warp turns while a lane has more than keep
    candidates pending; in each turn every lane with any takes its oldest
    (carried ones first) through the exact test and the insertion; the
    rest, less those its list rules out, wait for the next tile (none past
    the last).  W: the lists' length (k_gate_mma uses 7 for top-8 since
    v19: one insertion step, ~5 instructions, less).  ~64 instructions per
    turn (the insertion turn and the carried/new choice), ~15 per turn of
    the loop that saves the rest (the warp: its lane with most to save)."""
    rng = np.random.default_rng(seed)
    turns = tiles = inserts = cost = 0
    for _ in range(reps):
        s = rng.standard_normal((rows, nb))
        lists = [[[] for _ in range(4)] for _ in range(rows)]
        carry = [[[] for _ in range(4)] for _ in range(rows)]
        nt = (nb + BC - 1) // BC
        for it in range(nt):
            j0 = it * BC
            new = [[[] for _ in range(4)] for _ in range(rows)]
            for r in range(rows):
                f = row_floor(lists[r], W)
                cols = [[j0 + c for c in lane_cols(t) if j0 + c < nb] for t in range(4)]
                if it == 0:
                    f = max(f, first_floor(s, r, cols))
                for t in range(4):
                    new[r][t] = [s[r, j] for j in cols[t] if s[r, j] >= f]
            k = keep if it + 1 < nt else 0
            for w0 in range(0, rows, 16):
                for h in (0, 8):
                    rr = range(w0 + h, w0 + h + 8)
                    while max(len(carry[r][t]) + len(new[r][t]) for r in rr for t in range(4)) > k:
                        turns += 1
                        cost += 64
                        for r in rr:
                            for t in range(4):
                                q = carry[r][t] if carry[r][t] else new[r][t]
                                if not q:
                                    continue
                                inserts += offer(lists[r][t], q.pop(0), W)
                    cost += 15 * max(len(new[r][t]) for r in rr for t in range(4))
                    for r in rr:
                        for t in range(4):
                            l = lists[r][t]
                            carry[r][t] += [x for x in new[r][t] if len(l) < W or x > l[-1]]
                tiles += 1
    return turns / tiles, inserts / (reps * rows), cost / tiles


def main():
    nb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    for v in ('current', 'merged', 'exact', 'deferred2', 'deferred4', 'twopass'):
        it, ins, cost = run(v, nb)
        print('%-9s NB=%d: loop runs per warp-tile %.2f, insertions per row %.1f, '
              'model instructions per warp-tile %.0f' % (v, nb, it, ins, cost))
    for keep, w in ((1, K), (2, K), (2, K - 1)):
        it, ins, cost = run_carry(nb, keep, w)
        cost *= 1 if w == K else 1 - 5 / 64  # a step less per turn's ~64
        print('carry%d W%d NB=%d: loop runs per warp-tile %.2f, insertions per row %.1f, '
              'model instructions per warp-tile %.0f' % (keep, w, nb, it, ins, cost))


if __name__ == '__main__':
    main()
