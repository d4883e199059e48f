#!/usr/bin/env python3
"""How often k_gate_mma's candidate loop turns, simulated on the host.

The tensor-core gate (backends/cuda/gate_mma.cuh) ranks a tile of 64
centroids for 16 rows per warp: each row's scores are spread over the 4
lanes of a quad (lane t holds columns 8n + 2t and 8n + 2t + 1), each lane
keeps its own list of W, a score below the row floor is dropped with one
comparison, and the warp then loops once per candidate of its busiest lane
in each row half (8 rows x 4 lanes).  This replays that ranking for one
row half on i.i.d. normal scores (the benchmarks' inputs: normal q and k
give each row i.i.d. scores over its past blocks) and prints the loop's
turns per row half and tile, and the candidates per lane and tile.

  --floor cert   the kernel's floor (gtc_row_floor: the best lane W-th,
                 the second largest lane 4th, the smallest lane 2nd best),
                 with the first tile's floor of gtc_cand_mask
  --floor exact  the row's own W-th best so far (a lower bound no floor
                 can beat without dropping a winner)
  --defer K      past the first EAGER tiles, rank K tiles' candidates in
                 one loop, the floors recomputed after each loop (CUDA v27)
  --by-tile      also the turns of each tile of a pass (defer 1): where a
                 short row's turns go (CUDA v28)
  --lanes 4,2    lanes per row: 4 is the mma C layout (a loop per row half
                 of 8 rows; CUDA v28 and before), 2 the ranking layout of
                 CUDA v29 (16 rows of a warp in one loop, each row on two
                 lanes of 32 columns, the floor only rising in a pass, the
                 first tile's floor the worse lane's (W + 1) / 2-th best);
                 its turns are per warp and tile (one loop for both row
                 halves), the quad layout's per row half (two loops)
  --balance      (--lanes 2) the row's two lanes share out their
                 candidates: the lower lane takes the lower half in column
                 order, so the loop turns as often as the busiest pair's
                 half (CUDA v34, measured and not landed: docs/perf.md)

  python3 scripts/gate_turns.py --cands 512,2048,4096 --floor cert,exact --defer 1,2
  python3 scripts/gate_turns.py --cands 512,2048 --floor cert --lanes 4,2
  python3 scripts/gate_turns.py --cands 1024,2048,4096 --floor exact --lanes 1 --per-turn 1,2

  --lanes 1      k_gate_ws (CUDA v45): a row a lane, its own W-th best as
                 the floor; the column "defer" is then --per-turn, the
                 candidates a turn takes (2: CUDA v46's gws_insert2), and
                 --floor the first tile's: exact (its W-th best, v45-v63)
                 or units (the W-th best of its 16 four-column maxima, v64)

  python3 scripts/gate_turns.py --lanes 1 --per-turn 2 --floor exact,units --cands 64,512,2048
"""
import argparse

import numpy as np


def tiles_of(ncand, by_tile):
    """A row's 64-column tiles; by_tile (a list, or None) zeroed per tile."""
    ntiles = (ncand + 63) // 64
    if by_tile is not None:
        by_tile[:] = [0.0] * ntiles
    return ntiles


def scores(rng, rows, ntiles, ncand):
    """i.i.d. normal scores of rows over ntiles tiles, -inf past ncand."""
    s = rng.standard_normal((rows, ntiles * 64)).astype(np.float32)
    s[:, ncand:] = -np.inf  # past the row's candidates
    return s


def simulate(rng, ncand, W, floor, defer, eager, halves, by_tile=None):
    ntiles = tiles_of(ncand, by_tile)
    lane_of = (np.arange(64) % 8) // 2
    turns = cands = 0
    for _ in range(halves):
        s = scores(rng, 8, ntiles, ncand)
        lists = np.full((8, 4, W), -np.inf, np.float32)
        pending = [[[] for _ in range(4)] for _ in range(8)]
        f = np.full(8, -np.inf)
        for it in range(ntiles):
            tile = s[:, it * 64:(it + 1) * 64]
            if it <= eager or (it - eager) % defer == 0:  # after a loop
                for r in range(8):
                    L = -np.sort(-lists[r], axis=1)  # each lane's list, descending
                    if floor == 'exact':
                        f[r] = np.sort(L.ravel())[-W]
                    else:
                        f[r] = max(L[:, W - 1].max(), np.sort(L[:, 3 if W >= 4 else 0])[-2],
                                   L[:, 1].min())
            for r in range(8):
                fr = f[r]
                if it == 0:  # lists empty: gtc_cand_mask's floor from the lanes' two best
                    top2 = [np.sort(tile[r, lane_of == t])[-2:] for t in range(4)]
                    if W > 4:
                        fr = max(fr, min(b[0] for b in top2))
                    else:
                        fr = max(fr, sorted(b[0] if W == 4 else b[1] for b in top2)[-2])
                for t in range(4):
                    x = tile[r, lane_of == t]
                    pending[r][t] += list(x[np.isfinite(x) & (x >= fr)])
            if it < eager or (it - eager) % defer == defer - 1 or it == ntiles - 1:
                most = max(len(pending[r][t]) for r in range(8) for t in range(4))
                turns += most
                if by_tile is not None:  # defer 1 only: one loop per tile
                    by_tile[it] += most / halves
                for r in range(8):
                    for t in range(4):
                        lst = lists[r, t]
                        for x in pending[r][t]:
                            if x > lst.min():
                                lst[np.argmin(lst)] = x
                        cands += len(pending[r][t])
                        pending[r][t] = []
    tiles = halves * ntiles
    return turns / tiles, cands / tiles / 32


def simulate_pairs(rng, ncand, W, floor, halves, by_tile=None, balance=False):
    """CUDA v29's layout: 16 rows x 2 lanes of 32 columns, one loop per
    warp and tile; returns turns per warp and tile (both row halves)."""
    ntiles = tiles_of(ncand, by_tile)
    H = (W + 1) // 2
    cols = [np.arange(0, 32), np.arange(32, 64)]
    turns = cands = 0
    reps = max(1, halves // 2)  # a warp is two row halves
    for _ in range(reps):
        s = scores(rng, 16, ntiles, ncand)
        lists = np.full((16, 2, W), -np.inf, np.float32)
        f = np.full(16, -np.inf)
        for it in range(ntiles):
            tile = s[:, it * 64:(it + 1) * 64]
            pend = {}
            for r in range(16):
                L = -np.sort(-lists[r], axis=1)
                if floor == 'exact':
                    fr = np.sort(L.ravel())[-W]
                else:
                    fr = max(L[:, W - 1].max(), L[:, H - 1].min())
                fr = max(fr, f[r])  # gtc_row_floor only rises (rf)
                if it == 0:  # gtc_first_floor
                    fr = max(fr, min(np.sort(tile[r, c])[-H] for c in cols))
                f[r] = fr
                for h in range(2):
                    x = tile[r, cols[h]]
                    pend[r, h] = list(x[np.isfinite(x) & (x >= fr)])
            if balance:  # lower lane: the lower half in column order
                for r in range(16):
                    both = pend[r, 0] + pend[r, 1]
                    n0 = (len(both) + 1) // 2
                    pend[r, 0], pend[r, 1] = both[:n0], both[n0:]
            most = max(len(p) for p in pend.values())
            turns += most
            if by_tile is not None:
                by_tile[it] += most / reps
            for (r, h), p in pend.items():
                lst = lists[r, h]
                for x in p:
                    if x > lst.min():
                        lst[np.argmin(lst)] = x
                cands += len(p)
    tiles = reps * ntiles
    return turns / tiles, cands / tiles / 32


def simulate_rows(rng, ncand, W, halves, per_turn=1, by_tile=None, first='exact'):
    """CUDA v45's layout (k_gate_ws): a row a lane, 32 rows a warp, the
    floor the lane's own W-th best; per_turn 2 is v46's loop, two
    candidates a turn (gws_insert2).  The first tile's floor: its W-th best
    candidate (first 'exact', v45-v63) or the W-th best of its 16 units'
    maxima (first 'units', CUDA v64's gws_first_floor).  Returns turns per
    warp and tile."""
    ntiles = tiles_of(ncand, by_tile)
    turns = cands = 0
    reps = max(1, halves // 4)  # a warp is four row halves
    for _ in range(reps):
        s = scores(rng, 32, ntiles, ncand)
        L = np.full((32, W), -np.inf, np.float32)
        for it in range(ntiles):
            tile = s[:, it * 64:(it + 1) * 64]
            if it > 0:
                f = L[:, W - 1]
            elif first == 'exact':
                f = -np.sort(-tile, axis=1)[:, W - 1]
            else:  # units of 4 columns: their maxima's W-th best
                f = -np.sort(-tile.reshape(32, 16, 4).max(axis=2), axis=1)[:, W - 1]
            n = (np.isfinite(tile) & (tile >= f[:, None])).sum(axis=1)
            most = int(np.ceil(n / per_turn).max())
            turns += most
            cands += int(n.sum())
            if by_tile is not None:
                by_tile[it] += most / reps
            L = -np.sort(-np.concatenate([L, tile], axis=1), axis=1)[:, :W]
    tiles = reps * ntiles
    return turns / tiles, cands / tiles / 32


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cands', default='512,2048,4096',
                    help='past blocks per row (a 512K causal row sees 2048 on average)')
    ap.add_argument('--W', type=int, default=7, help="a lane's list (7 for top-8)")
    ap.add_argument('--floor', default='cert,exact')
    ap.add_argument('--defer', default='1', help='tiles per loop past the first EAGER')
    ap.add_argument('--eager', type=int, default=4)
    ap.add_argument('--halves', type=int, default=8, help='row halves simulated per point')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--by-tile', action='store_true', help='turns of each tile of a pass')
    ap.add_argument('--lanes', default='4',
                    help='lanes per row: 4 (mma C layout), 2 (CUDA v29), 1 (k_gate_ws, v45)')
    ap.add_argument('--per-turn', default='1',
                    help='(--lanes 1) candidates a turn: 1 (v45), 2 (v46, gws_insert2)')
    ap.add_argument('--balance', action='store_true',
                    help="(--lanes 2) a row's lanes share out their candidates (CUDA v34, not landed)")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    print('lanes  cands  floor  defer  turns/warp-loop/tile  cands/lane/tile')
    for lanes in [int(x) for x in a.lanes.split(',')]:
        for n in [int(x) for x in a.cands.split(',')]:
            for fl in a.floor.split(','):
                if (fl == 'cert' and lanes == 1) or (fl == 'units' and lanes != 1):
                    continue  # lanes 1 ranks on its own W-th best; units: its first tile's
                for k in ([int(x) for x in a.defer.split(',')] if lanes == 4 else
                          [int(x) for x in a.per_turn.split(',')] if lanes == 1 else [1]):
                    bt = [] if a.by_tile and k == 1 else None
                    if lanes == 4:  # a loop per row half: two per warp and tile
                        t, c = simulate(rng, n, a.W, fl, k, a.eager if k > 1 else 0, a.halves, bt)
                    elif lanes == 2:  # one loop per warp and tile
                        t, c = simulate_pairs(rng, n, a.W, fl, a.halves, bt, a.balance)
                    else:  # one loop per warp and tile; k: candidates a turn
                        t, c = simulate_rows(rng, n, a.W, a.halves * 4, k, bt, fl)
                    print('%5d  %5d  %-5s  %5d  %20.2f  %15.3f' % (lanes, n, fl, k, t, c))
                    if bt:
                        print('       turns by tile: ' + ' '.join('%.2f' % x for x in bt))

if __name__ == '__main__':
    main()
