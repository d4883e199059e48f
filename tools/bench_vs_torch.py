#!/usr/bin/env python3
"""libmoba's CUDA backend against PyTorch, in one process on one GPU.

For each shape: dense causal SDPA (cuDNN and flash backends), a MoBA written
with FlexAttention (gate with torch ops, then a block mask: what a PyTorch
user would write), and libmoba (ctypes, torch tensors wrapped with
moba_buffer_wrap, torch's current stream).  MoBA times include gating.
Times are CUDA-event medians after one warm-up run: libmoba's of 10 runs,
the dense and Flex ones of 5 (3 at 128K, 1 above), fewer where the runs
pass 20 s; a point that would run too long or runs out of memory is
skipped and says so.  A tool, never a test.

usage: bench_vs_torch.py --lib build/libmoba.so [--quick] [--only moba,cudnn,...]
           [--lens 32k,128k] [--blocks 128x8] [--kernels mma,simt] [--groups 1,4]
           [--vary NAME=v1,v2 ...]
"""
import argparse
import ctypes as C
import itertools
import math
import os
import sys

import torch
import torch.nn.functional as F


class Params(C.Structure):
    _fields_ = [("num_q_heads", C.c_int32), ("num_kv_heads", C.c_int32),
                ("head_dim", C.c_int32), ("block_size", C.c_int32),
                ("top_k", C.c_int32), ("softmax_scale", C.c_float),
                ("dtype", C.c_int), ("causal", C.c_int32)]


class Moba:
    def __init__(self, path):
        # A library in a build tree loads that tree's CUDA module unless
        # MOBA_PLUGIN_DIR says otherwise: without it libmoba looks in its
        # install directory and reports the backend missing.
        mod = os.path.join(os.path.dirname(path), "backends", "cuda")
        if "MOBA_PLUGIN_DIR" not in os.environ and os.path.exists(
                os.path.join(mod, "libmoba-cuda.so")):
            os.environ["MOBA_PLUGIN_DIR"] = mod
        self.lib = C.CDLL(path)
        self.lib.moba_last_error.restype = C.c_char_p
        self.ctx = C.c_void_p()
        self.ck(self.lib.moba_context_create(C.byref(self.ctx), b"cuda"))
        self.ck(self.lib.moba_context_set_stream(
            self.ctx, C.c_void_p(torch.cuda.current_stream().cuda_stream)))

    def ck(self, st):
        if st:
            raise RuntimeError("libmoba: %d %s" % (st, self.lib.moba_last_error().decode()))

    def wrap(self, t):
        b = C.c_void_p()
        self.ck(self.lib.moba_buffer_wrap(self.ctx, C.c_void_p(t.data_ptr()),
                                          C.c_size_t(t.numel() * t.element_size()),
                                          C.byref(b)))
        return b

    def plan(self, H, D, S, K, seqlens, dtype=2):
        p = Params(H, H, D, S, K, 0.0, dtype, 1)
        cu = [0]
        for n in seqlens:
            cu.append(cu[-1] + n)
        arr = (C.c_int32 * len(cu))(*cu)
        pl = C.c_void_p()
        self.ck(self.lib.moba_plan_create(self.ctx, C.byref(p), arr, len(seqlens), C.byref(pl)))
        nbytes = C.c_size_t()
        self.ck(self.lib.moba_plan_device_bytes(pl, C.byref(nbytes)))
        return pl, nbytes.value

    def run(self, pl, bq, bk, bv, bo):
        self.ck(self.lib.moba_plan_forward(pl, bq, bk, bv, bo, None))


def reps(n, short):
    """Fewer repetitions for the long dense and Flex points (seconds each)."""
    return short if n <= 32768 else 3 if n <= 131072 else 1


def timed(fn, reps, budget_s=20.0):
    """Median ms of reps runs after one warm-up (fewer if slow)."""
    fn()
    torch.cuda.synchronize()
    ts = []
    spent = 0.0
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
        spent += ts[-1] / 1e3
        if spent > budget_s:
            break
    ts.sort()
    return ts[len(ts) // 2]


def sdpa(q, k, v, backend):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    be = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}[backend]
    qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))  # [B, H, N, D] views
    with sdpa_kernel(be):
        return lambda: F.scaled_dot_product_attention(qt, kt, vt, is_causal=True)


_flex = None


def flex_moba(q, k, v, S, K):
    """MoBA as a PyTorch user writes it with FlexAttention."""
    global _flex
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
    if _flex is None:
        _flex = torch.compile(flex_attention, dynamic=False)
    B, N, H, D = q.shape
    nb = N // S
    T = 128  # FlexAttention's tile
    qh, kh, vh = (x.transpose(1, 2) for x in (q, k, v))  # [B, H, N, D]
    kk = K - 1

    def run():
        cent = k.view(B, nb, S, H, D).mean(2, dtype=torch.float32).to(q.dtype).permute(0, 2, 1, 3)
        idx = torch.empty(B, H, N, max(kk, 1), dtype=torch.int32, device=q.device)
        own = torch.arange(N, device=q.device) // S
        ch = max(1, (1 << 28) // (B * H * nb))  # bound the score chunk
        for s0 in range(0, N, ch):
            s1 = min(N, s0 + ch)
            sc = torch.matmul(qh[:, :, s0:s1], cent.transpose(-1, -2)).float()
            past = torch.arange(nb, device=q.device)[None, :] < own[s0:s1, None]
            sc = sc.masked_fill(~past, float("-inf"))
            top = sc.topk(max(kk, 1), dim=-1)
            sel = top.indices.int()
            sel = torch.where(top.values == float("-inf"), own[s0:s1, None].int(), sel)
            idx[:, :, s0:s1] = sel
        # Tile-level mask: a KV tile is visited if any query of the Q tile
        # selected its MoBA block (or it is the own block), causal.
        nqt, nkt = N // T, N // T
        blk = torch.zeros(B, H, nqt, nb, dtype=torch.bool, device=q.device)
        blk.scatter_(3, idx.view(B, H, nqt, T * idx.shape[-1]).long(), True)
        qt_own = (torch.arange(nqt, device=q.device) * T) // S
        blk[:, :, torch.arange(nqt, device=q.device), qt_own] = True
        qt_last = (torch.arange(nqt, device=q.device) * T + T - 1) // S
        blk[:, :, torch.arange(nqt, device=q.device), qt_last] = True
        kt_blk = (torch.arange(nkt, device=q.device) * T) // S
        tiles = blk[..., kt_blk]
        tiles &= torch.arange(nkt, device=q.device)[None, :] <= torch.arange(nqt, device=q.device)[:, None]
        num = tiles.sum(-1, dtype=torch.int32)
        ind = torch.argsort(tiles.to(torch.int8), dim=-1, descending=True, stable=True).int()

        def mask_mod(b, h, qi, ki):
            kb = ki // S
            ok = kb == qi // S
            for i in range(kk):
                ok = ok | (idx[b, h, qi, i] == kb)
            return ok & (ki <= qi)

        bm = BlockMask.from_kv_blocks(num, ind, BLOCK_SIZE=T, mask_mod=mask_mod, seq_lengths=(N, N))
        return _flex(qh, kh, vh, block_mask=bm)
    return run


def time_moba(m, which, H, D, S, K, B, n, q, k, v, o, res):
    """Times libmoba into res; returns its plan GB (None if not run)."""
    name = "B%d H%d N%dK S%d k%d" % (B, H, n // 1024, S, K)
    gb = None
    if "moba" in which:
        try:
            pl, nbytes = m.plan(H, D, S, K, [n] * B)
            gb = nbytes / 1e9
            bq, bk, bv, bo = (m.wrap(x) for x in (q, k, v, o))
            # Ten runs at every length: a forward takes at most ~0.6 s, so
            # timed's budget is never what stops them (reps() cut the 512K
            # and 1M points to one run, a single sample of the forward).
            res["moba"] = timed(lambda: m.run(pl, bq, bk, bv, bo), 10)
            res["gate"] = timed(lambda: m.ck(m.lib.moba_plan_gate(pl, bq, bk)), 10)
            for b in (bq, bk, bv, bo):
                m.lib.moba_buffer_free(b)
            m.lib.moba_plan_destroy(pl)
        except Exception as e:  # noqa: BLE001
            print("  %s moba failed: %s" % (name, e), flush=True)
    return gb


def report(name, B, H, n, S, K, D, res, gb):
    """One table row."""
    # FLOP floor: selected attention (QK and PV, causal own block
    # half) + gating over past blocks, at 785 TFLOP/s.
    T = B * n
    att = 4.0 * T * H * D * S * (K - 0.5)
    gate = 2.0 * T * H * D * (n / S) / 2
    floor_ms = (att + gate) / 785e12 * 1e3

    def f(x):
        return "%10.2f" % x if x is not None else "%10s" % "-"
    mo = res.get("moba")
    xc = res["cudnn"] / mo if mo and res.get("cudnn") else None
    xf = res["flex"] / mo if mo and res.get("flex") else None
    print("%-32s %s %s %s %s %s %s %s %s %s" % (
        name, f(res.get("cudnn")), f(res.get("flash")), f(res.get("flex")), f(mo),
        f(res.get("gate")),
        f(gb), ("%9.1f" % xc) if xc else "%9s" % "-",
        ("%9.1f" % xf) if xf else "%9s" % "-",
        ("%9.1f%%" % (100 * floor_ms / mo)) if mo else "-"), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--quick", action="store_true", help="8K and 32K only")
    ap.add_argument("--only", default="cudnn,flash,flex,moba")
    ap.add_argument("--flash-max-n", type=int, default=131072,
                    help="longest sequence timed with the flash backend")
    ap.add_argument("--no-flex-above", type=int, default=1 << 19,
                    help="skip FlexAttention MoBA above this length")
    ap.add_argument("--lens", default="",
                    help="sequence lengths to run, e.g. 32k,128k (default: all)")
    ap.add_argument("--blocks", default="",
                    help="block_size x top_k configs, e.g. 128x8 (default: 128x8,512x3)")
    ap.add_argument("--kernels", default="",
                    help="libmoba CUDA kernels to time, one row each, e.g. mma,simt "
                    "(sets MOBA_CUDA_KERNEL per run; default: the library's choice)")
    ap.add_argument("--groups", default="",
                    help="head groups of the CUDA backend's forward, one row each, e.g. 1,4 "
                    "(sets MOBA_CUDA_HEAD_GROUPS per run; default: the library's choice)")
    ap.add_argument("--vary", action="append", default=[],
                    help="NAME=v1,v2: a row per value of environment variable NAME "
                    "(combined with --kernels and --groups; an empty value unsets it)")
    ap.add_argument("--paper", action="store_true",
                    help="also the paper's setting (B=1, 1M tokens, 64 blocks, top-3); "
                    "it is in the default set when neither --lens nor --blocks is given")
    ap.add_argument("--max-dense-s", type=float, default=12.0,
                    help="skip a dense point predicted above this")
    args = ap.parse_args()
    which = set(args.only.split(","))
    torch.manual_seed(0)
    dev = torch.device("cuda")
    print("device:", torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    # A stream of our own: torch's default stream is the legacy stream
    # (handle 0), which libmoba reads as "use the library's own stream".
    stream = torch.cuda.Stream()
    torch.cuda.set_stream(stream)
    # Without moba in --only, PyTorch's side runs alone (no libmoba, e.g.
    # cuDNN's reference time beside the OpenCL backend's moba-bench).
    m = Moba(os.path.abspath(args.lib)) if "moba" in which else None
    pts = []
    lens = [8192, 32768] if args.quick else [8192, 32768, 131072, 524288]
    if args.lens:
        lens = [int(x.lower().rstrip("k")) * 1024 for x in args.lens.split(",")]
    cfgs = ((128, 8), (512, 3))
    if args.blocks:
        cfgs = [tuple(int(y) for y in x.split("x")) for x in args.blocks.split(",")]
    for S, K in cfgs:
        for n in lens:
            pts.append((2, 16, n, S, K))
    if args.paper or (not args.quick and not args.lens and not args.blocks):
        pts.append((1, 16, 1 << 20, (1 << 20) // 64, 3))
    # Rows: every combination of these variables' values (None: unset).
    env_rows = [("MOBA_CUDA_KERNEL", args.kernels.split(",") if args.kernels else [None]),
                ("MOBA_CUDA_HEAD_GROUPS", args.groups.split(",") if args.groups else [None])]
    for v in args.vary:
        name, _, vals = v.partition("=")
        env_rows.append((name, [x or None for x in vals.split(",")]))
    short = {"MOBA_CUDA_KERNEL": "", "MOBA_CUDA_HEAD_GROUPS": "G"}
    D = 128
    print("%-32s %10s %10s %10s %10s %10s %10s %9s %9s %10s" % (
        "shape", "cudnn ms", "flash ms", "flex ms", "moba ms", "(gate ms)", "moba GB",
        "x cudnn", "x flex", "%floor"), flush=True)
    dense_ms = {}
    for B, H, n, S, K in pts:
        name = "B%d H%d N%dK S%d k%d" % (B, H, n // 1024, S, K)
        res = {}
        try:
            q = torch.randn(B, n, H, D, device=dev, dtype=torch.bfloat16)
            k = torch.randn(B, n, H, D, device=dev, dtype=torch.bfloat16)
            v = torch.randn(B, n, H, D, device=dev, dtype=torch.bfloat16)
            o = torch.empty_like(q)
        except torch.OutOfMemoryError:
            print(name, "skipped: inputs do not fit", flush=True)
            continue
        # Dense time does not depend on S/K: measure once per (B, n).
        for be in ("cudnn", "flash"):
            if be not in which:
                continue
            key = (be, B, n)
            if be == "flash" and n > args.flash_max_n:
                dense_ms[key] = None
            if key not in dense_ms:
                pred = 0.25e3 * (n / 131072) ** 2 * B / 2 * (1.8 if be == "flash" else 1)
                if pred > args.max_dense_s * 1e3:
                    dense_ms[key] = None
                else:
                    try:
                        dense_ms[key] = timed(sdpa(q, k, v, be), reps(n, 5))
                    except Exception as e:  # noqa: BLE001
                        print("  %s %s failed: %s" % (name, be, str(e)[:100]), flush=True)
                        dense_ms[key] = None
            res[be] = dense_ms[key]
        if "flex" in which and n <= args.no_flex_above:
            try:
                res["flex"] = timed(flex_moba(q, k, v, S, K), reps(n, 5))
            except Exception as e:  # noqa: BLE001
                print("  %s flex failed: %s" % (name, str(e).split("\n")[0][:120]), flush=True)
            torch.cuda.empty_cache()
        for combo in itertools.product(*(vals for _, vals in env_rows)):
            for (var, _), val in zip(env_rows, combo):
                if val:
                    os.environ[var] = val
                else:
                    os.environ.pop(var, None)
            res.pop("moba", None)
            res.pop("gate", None)
            tag = ",".join(short.get(var, var + "=") + val
                           for (var, _), val in zip(env_rows, combo) if val)
            report(name + (" [%s]" % tag if tag else ""), B, H, n, S, K, D, res,
                   time_moba(m, which, H, D, S, K, B, n, q, k, v, o, res))
        del q, k, v, o
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
