#!/usr/bin/env python3
"""Writes cases in the spec's section 8 layout (q, k, v, cu_seqlens, meta.json)
for comparing two builds' outputs bit for bit (device_ab.sh SAME=1): shapes
that reach the CUDA backend's paths a kernel change may touch, with random
inputs from fixed seeds.  No reference output: the builds are compared with
each other, and conformance compares each with the spec.

usage: make_cases.py OUTDIR
"""
import json
import os
import sys

import numpy as np

# name: (sequence lengths, Hq, Hk, D, block, top-k, dtype)
CASES = {
    # top-8 in 128-key blocks (the benchmark's), GQA, varlen with a short
    # last sequence: k_mma_own with 7 partials, and fewer near each start.
    "blk128-top8-d128-bf16": ((12000, 8192, 3001), 16, 4, 128, 128, 8, "bf16"),
    # top-12 (11 partials: past the first eight lse, the merge's slots
    # turned more than twice), blocks of 96 keys (not whole 64-key chunks).
    "blk96-top12-d64-f16": ((5000, 2049), 8, 8, 64, 96, 12, "f16"),
    # top-3: fewer partials than the merge has slots.
    "blk64-top3-d128-bf16": ((4097, 700), 4, 2, 128, 64, 3, "bf16"),
    # blocks of more than 128 keys: k_wgmma_kv_ws's key-centric pairs
    # (whole chunks at 512 keys; a masked last chunk at 200) and, from 512
    # keys, the own blocks on k_wgmma_own_ws.
    "blk512-top3-d128-bf16": ((16000, 5000), 8, 4, 128, 512, 3, "bf16"),
    "blk200-top4-d64-f16": ((7001, 1500), 8, 8, 64, 200, 4, "f16"),
    # D = 256: the mma.sync k_mma_kv_wide takes every block size there,
    # k_mma_own the own blocks.
    "blk128-top8-d256-bf16": ((6000, 2500), 8, 4, 256, 128, 8, "bf16"),
}


def write(outdir, name, lens, hq, hk, d, block, top_k, dtype, seed):
    rng = np.random.default_rng(seed)
    t = sum(lens)
    path = os.path.join(outdir, name)
    os.makedirs(path, exist_ok=True)
    for a, h in (("q", hq), ("k", hk), ("v", hk)):
        np.save(os.path.join(path, a + ".npy"), rng.standard_normal((t, h, d), dtype=np.float32))
    np.save(os.path.join(path, "cu_seqlens.npy"), np.cumsum((0,) + lens).astype(np.int32))
    meta = {"block_size": block, "top_k": top_k, "num_q_heads": hq, "num_kv_heads": hk,
            "head_dim": d, "dtype": dtype, "softmax_scale": 1.0 / d ** 0.5}
    with open(os.path.join(path, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for i, (name, c) in enumerate(sorted(CASES.items())):
        write(sys.argv[1], name, *c, seed=1000 + i)
        print(os.path.join(sys.argv[1], name))


if __name__ == "__main__":
    main()
