#!/usr/bin/env python3
"""libmoba's CPU backend vs PyTorch's CPU scaled_dot_product_attention.

B=1, Hq=Hk=8, D=128, causal; MoBA with block 512/top-3 and block 128/top-8 at
8K, 32K, 128K tokens, f32 and bf16, in one process.  libmoba is called through
ctypes on libmoba.so (buffers wrap torch's own tensors, no copies); its time
is gating + attention (a plan is made once per shape, as a user would).  The
torch baseline is dense causal SDPA (what MoBA replaces), same dtype.

usage: bench_cpu_vs_torch.py LIBMOBA_SO [--threads 16] [--reps 3]
       [--lens 8192,32768,131072] [--torch-max 32768]
torch is skipped above --torch-max tokens (dense causal grows as N^2: ~16x the
32K time at 128K); the table says so.
"""
import argparse
import ctypes as C
import statistics
import sys
import time

import torch
import torch.nn.functional as F


class Params(C.Structure):
    _fields_ = [("num_q_heads", C.c_int32), ("num_kv_heads", C.c_int32),
                ("head_dim", C.c_int32), ("block_size", C.c_int32),
                ("top_k", C.c_int32), ("softmax_scale", C.c_float),
                ("dtype", C.c_int), ("causal", C.c_int32)]


class DeviceInfo(C.Structure):
    _fields_ = [("name", C.c_char * 128), ("vendor", C.c_char * 128),
                ("driver", C.c_char * 128), ("memory_bytes", C.c_uint64),
                ("compute_units", C.c_int), ("dtypes", C.c_uint),
                ("num_head_dims", C.c_int), ("head_dims", C.c_int * 16),
                ("head_dim_max", C.c_int), ("is_cpu", C.c_int)]


DTYPES = {"f32": (0, torch.float32), "bf16": (2, torch.bfloat16)}


class Moba:
    def __init__(self, path, threads):
        self.lib = L = C.CDLL(path)
        L.moba_last_error.restype = C.c_char_p
        L.moba_params_default.restype = Params
        self.ctx = C.c_void_p()
        self.check(L.moba_context_create(C.byref(self.ctx), b"cpu"), "context")
        self.check(L.moba_context_set_num_threads(self.ctx, threads), "threads")
        info = DeviceInfo()
        self.check(L.moba_device_info_get(b"cpu", 0, C.byref(info)), "info")
        self.info = "%s, %s" % (info.name.decode(), info.driver.decode())

    def check(self, st, what):
        if st:
            raise RuntimeError("libmoba %s: status %d: %s" % (
                what, st, self.lib.moba_last_error().decode()))

    def wrap(self, t):
        b = C.c_void_p()
        self.check(self.lib.moba_buffer_wrap(
            self.ctx, C.c_void_p(t.data_ptr()), C.c_size_t(t.numel() * t.element_size()),
            C.byref(b)), "wrap")
        return b

    def time(self, q, k, v, out, block, topk, dt, reps):
        L = self.lib
        T, H, D = q.shape
        p = L.moba_params_default()
        p.num_q_heads, p.num_kv_heads, p.head_dim = H, k.shape[1], D
        p.block_size, p.top_k, p.dtype, p.causal = block, topk, DTYPES[dt][0], 1
        cu = (C.c_int32 * 2)(0, T)
        plan = C.c_void_p()
        self.check(L.moba_plan_create(self.ctx, C.byref(p), cu, 1, C.byref(plan)), "plan")
        bufs = [self.wrap(t) for t in (q, k, v, out)]
        times = []
        for _ in range(reps + 1):
            t0 = time.perf_counter()
            self.check(L.moba_plan_gate(plan, bufs[0], bufs[1]), "gate")
            self.check(L.moba_plan_attend(plan, bufs[0], bufs[1], bufs[2], bufs[3], None),
                       "attend")
            times.append(time.perf_counter() - t0)
        L.moba_plan_destroy(plan)
        for b in bufs:
            L.moba_buffer_free(b)
        return statistics.median(times[1:])


def torch_time(q, k, v, reps):
    qt, kt, vt = (x.transpose(0, 1).unsqueeze(0) for x in (q, k, v))  # [1,H,T,D]
    times = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        F.scaled_dot_product_attention(qt, kt, vt, is_causal=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--lens", default="8192,32768,131072")
    ap.add_argument("--torch-max", type=int, default=32768)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = Moba(a.lib, a.threads)
    print("libmoba: %s | torch %s, %d threads" % (m.info, torch.__version__, a.threads))
    print("%7s %5s %-12s %10s %10s %8s" % ("N", "dtype", "moba", "moba s", "torch s", "speedup"))
    H, D = 8, 128
    for n in (int(x) for x in a.lens.split(",")):
        g = torch.Generator().manual_seed(n)
        base = [torch.randn(n, H, D, generator=g) for _ in range(3)]
        for dt in ("f32", "bf16"):
            q, k, v = (x.to(DTYPES[dt][1]).contiguous() for x in base)
            out = torch.empty_like(q)
            # libmoba first: torch's OpenMP workers keep spinning for a while
            # after an op and would steal cores from libmoba's threads.
            mts = [m.time(q, k, v, out, block, topk, dt, a.reps)
                   for block, topk in ((512, 3), (128, 8))]
            time.sleep(0.5)
            tt = torch_time(q, k, v, max(1, a.reps // 2)) if n <= a.torch_max else None
            for (block, topk), mt in zip(((512, 3), (128, 8)), mts):
                print("%7d %5s %-12s %10.4f %10s %8s" % (
                    n, dt, "blk%d/top%d" % (block, topk), mt,
                    "%.4f" % tt if tt else "skipped", "%.1fx" % (tt / mt) if tt else "-"),
                    flush=True)
    print("torch dense causal SDPA skipped above %d tokens (too slow: ~N^2)." % a.torch_max)


if __name__ == "__main__":
    sys.exit(main())
