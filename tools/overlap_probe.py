#!/usr/bin/env python3
"""Does libmoba's gating overlap with its attention on one GPU?

The gate is bound by its ALU pipe, the key-centric attention by latency and
memory; if the GPU runs CTAs of both at once, a forward split into chunks
(a sequence and a group of heads each) with the gates on one stream and the
attention on another finishes sooner than the same chunks in series.  This
measures that, in one process, for one shape: the whole problem as one plan
(gate + attend; and moba_plan_forward, which overlaps them in the library); the chunks in series on one stream; the chunks pipelined over
two streams (attention on a higher-priority stream, and at equal priority).
It also checks that every pipelined output is bitwise the one-plan output.
A tool, never a test.

usage: overlap_probe.py --lib build/libmoba.so [--n 131072] [--batch 2]
           [--heads 16] [--groups 4] [--block 128] [--topk 8]
"""
import argparse
from ctypes import c_void_p as C_void
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_vs_torch import Moba, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--n", type=int, default=131072)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--groups", type=int, default=4, help="head groups per sequence")
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--topk", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    B, n, H, G, S, K, D = args.batch, args.n, args.heads, args.groups, args.block, args.topk, 128
    torch.manual_seed(0)
    dev = torch.device("cuda")
    print("device:", torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    main_s = torch.cuda.Stream()
    torch.cuda.set_stream(main_s)
    m = Moba(os.path.abspath(args.lib))
    q, k, v = (torch.randn(B, n, H, D, device=dev, dtype=torch.bfloat16) for _ in range(3))
    o = torch.empty_like(q)
    Hg = H // G
    pl, _ = m.plan(H, D, S, K, [n] * B)
    bq, bk, bv, bo = (m.wrap(x) for x in (q, k, v, o))

    def set_stream(s):
        m.ck(m.lib.moba_context_set_stream(m.ctx, C_void(s.cuda_stream)))

    def separate():
        m.ck(m.lib.moba_plan_gate(pl, bq, bk))
        m.ck(m.lib.moba_plan_attend(pl, bq, bk, bv, bo, None))

    full = timed(separate, args.reps)
    gate_full = timed(lambda: m.ck(m.lib.moba_plan_gate(pl, bq, bk)), args.reps)
    separate()
    torch.cuda.synchronize()
    ref = o.clone()
    o.zero_()
    fwd = timed(lambda: m.run(pl, bq, bk, bv, bo), args.reps)
    torch.cuda.synchronize()
    print("  moba_plan_forward: output %s the separate calls' bits" %
          ("has" if torch.equal(o, ref) else "DIFFERS FROM"), flush=True)

    # Chunks: sequence b, heads [g Hg, (g + 1) Hg), each contiguous.
    chunks = []
    for b in range(B):
        for g in range(G):
            cq, ck_, cv = (x[b:b + 1, :, g * Hg:(g + 1) * Hg].contiguous() for x in (q, k, v))
            co = torch.empty_like(cq)
            cpl, _ = m.plan(Hg, D, S, K, [n])
            chunks.append((b, g, cpl, [cq, ck_, cv, co], [m.wrap(x) for x in (cq, ck_, cv, co)]))

    def serial():
        for _, _, cpl, _, bb in chunks:
            m.run(cpl, *bb)

    gs = torch.cuda.Stream(priority=0)
    hi = torch.cuda.Stream(priority=-1)
    lo = torch.cuda.Stream(priority=0)

    def piped(att):
        """Gates on gs, attention on att; both forked from and joined to main_s."""
        start = torch.cuda.Event()
        start.record(main_s)
        gs.wait_event(start)
        att.wait_event(start)
        for _, _, cpl, _, bb in chunks:
            set_stream(gs)
            m.ck(m.lib.moba_plan_gate(cpl, bb[0], bb[1]))
            ev = torch.cuda.Event()
            ev.record(gs)
            att.wait_event(ev)
            set_stream(att)
            m.ck(m.lib.moba_plan_attend(cpl, bb[0], bb[1], bb[2], bb[3], None))
        done = torch.cuda.Event()
        done.record(att)
        main_s.wait_event(done)
        set_stream(main_s)

    def check(name):
        torch.cuda.synchronize()
        bad = 0
        for b, g, _, tt, _ in chunks:
            if not torch.equal(tt[3][0], ref[b, :, g * Hg:(g + 1) * Hg]):
                bad += 1
        print("  %s: %d of %d chunks differ from the one-plan output" % (name, bad, len(chunks)),
              flush=True)
        for _, _, _, tt, _ in chunks:
            tt[3].zero_()

    res = {}
    res["serial"] = timed(serial, args.reps)
    check("serial")
    res["piped, attention high priority"] = timed(lambda: piped(hi), args.reps)
    check("piped hi")
    res["piped, equal priority"] = timed(lambda: piped(lo), args.reps)
    check("piped eq")
    print("B%d H%d N%dK S%d k%d, %d chunks (B x %d head groups)" % (B, H, n // 1024, S, K,
                                                                    len(chunks), G))
    print("  one plan, gate + attend:   %8.2f ms (gate %.2f)" % (full, gate_full))
    print("  one plan, moba_plan_forward %8.2f ms  (%.3fx; MOBA_CUDA_HEAD_GROUPS=%s)" % (
        fwd, full / fwd, os.environ.get("MOBA_CUDA_HEAD_GROUPS", "unset")))
    for name, t in res.items():
        print("  chunks, %-26s %8.2f ms  (%.3fx one plan)" % (name + ":", t, full / t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
