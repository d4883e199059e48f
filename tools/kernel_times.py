#!/usr/bin/env python3
"""Where one libmoba forward's time goes, kernel by kernel, at the clocks a
benchmark runs at (torch.profiler's CUDA activity, no replay or clock lock:
ncu's per-kernel figures are taken at locked base clocks and do not add up
to a benchmark's wall time).  A tool, never a test.

For one shape it warms up, then profiles --iters forwards through
moba_plan_forward on torch's stream and prints per kernel: launches per
forward, device ms per forward and share; then the forward's span (first
kernel start to last kernel end, per forward) against the sum of its
kernels, whose difference is time the GPU spent between kernels.

usage: kernel_times.py --lib build/libmoba.so [--seqlen 1m] [--batch 1]
           [--heads 16] [--block 16384] [--topk 3] [--iters 3]
"""
import argparse
import collections
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_vs_torch import Moba  # noqa: E402


def tokens(s):
    s = s.lower()
    return int(s[:-1]) * (1024 if s[-1] == "k" else 1048576) if s[-1] in "km" else int(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--seqlen", default="1m")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--block", type=int, default=16384)
    ap.add_argument("--topk", type=int, default=3)
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    n, B, H, D = tokens(args.seqlen), args.batch, args.heads, args.head_dim
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, n, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    o = torch.empty_like(q)
    # torch's default stream is the legacy stream (handle 0), which libmoba
    # reads as "the library's own stream": events on it would not order.
    torch.cuda.set_stream(torch.cuda.Stream())
    m = Moba(args.lib)
    pl, nbytes = m.plan(H, D, args.block, args.topk, [n] * B)
    bq, bk, bv, bo = (m.wrap(x) for x in (q, k, v, o))
    for _ in range(2):
        m.run(pl, bq, bk, bv, bo)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        start.record()
        for _ in range(args.iters):
            m.run(pl, bq, bk, bv, bo)
        end.record()
        torch.cuda.synchronize()
    wall = start.elapsed_time(end) / args.iters
    kern = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    per = collections.OrderedDict()
    t0 = t1 = None
    for e in sorted(kern, key=lambda e: e.time_range.start):
        name = e.name.split("(")[0].split("<")[0]
        c, tot = per.get(name, (0, 0.0))
        per[name] = (c + 1, tot + e.time_range.elapsed_us())
        t0 = e.time_range.start if t0 is None else min(t0, e.time_range.start)
        t1 = e.time_range.end if t1 is None else max(t1, e.time_range.end)
    busy = sum(t for _, t in per.values()) / args.iters / 1e3
    print("%s B%d H%d D%d block %d top-%d, %d forwards, plan %.2f GB, %s" % (
        args.seqlen, B, H, D, args.block, args.topk, args.iters, nbytes / 1e9,
        torch.cuda.get_device_name()))
    print("%-28s %8s %10s %7s" % ("kernel", "per fwd", "ms/fwd", "share"))
    for name, (c, tot) in sorted(per.items(), key=lambda x: -x[1][1]):
        ms = tot / args.iters / 1e3
        print("%-28s %8.1f %10.3f %6.1f%%" % (name[:28], c / args.iters, ms, 100 * ms / busy))
    span = (t1 - t0) / args.iters / 1e3 if kern else 0.0
    print("kernels %.3f ms/fwd; span %.3f ms/fwd (between kernels %.3f); events %.3f ms/fwd" % (
        busy, span, span - busy, wall))
    for b in (bq, bk, bv, bo):
        m.lib.moba_buffer_free(b)
    m.lib.moba_plan_destroy(pl)


if __name__ == "__main__":
    main()
