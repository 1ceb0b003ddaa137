#!/usr/bin/env python3
"""PyTorch's int4 weight-only kernel (tinygemm: aten._weight_int4pack_mm) and torch's FP16
linear (cuBLAS) on the Llama-2-7B linear shapes, timed like bench_w4a16.cu: random weights,
CUDA-graph replays of calls cycling through enough weight copies to overflow L2, median of
repeats, microseconds per call. Run on the GPU machine by scripts/gpu-check.

  python3 bench/cuda/torch_int4.py [--reps 30] [--m 1,16]

API (PyTorch 2.5+, checked on 2.11): _convert_weight_to_int4pack(w: uint8 [n, k/2] (two
4-bit codes per byte, even k first... the exact nibble order does not matter for speed),
inner_k_tiles in {2, 4, 8}) -> packed int32; _weight_int4pack_mm(x: bf16 [m, k], packed,
group_size, scales_and_zeros: bf16 [k/group, n, 2]) -> bf16 [m, n]. x must be bf16 on CUDA."""
import argparse
import statistics

import torch

SHAPES = [(4096, 4096, "o_proj"), (12288, 4096, "qkv fused"), (11008, 4096, "gate|up"),
          (22016, 4096, "gate+up fused"), (4096, 11008, "down_proj")]


def time_graph(fn_list, reps):
    """Median over reps of one graph replay (all of fn_list) divided by its length, in us."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for f in fn_list[:3]:
            f()  # warm-up outside capture (lazy init)
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for f in fn_list:
            f()
    for _ in range(3):
        g.replay()
    times = []
    for _ in range(reps):
        e0 = torch.cuda.Event(enable_timing=True)
        e1 = torch.cuda.Event(enable_timing=True)
        e0.record()
        g.replay()
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1) * 1000.0 / len(fn_list))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--m", default="1,16")
    ap.add_argument("--group", type=int, default=128)
    ap.add_argument("--inner-k-tiles", type=int, default=8)
    a = ap.parse_args()
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    l2 = getattr(props, "L2_cache_size", 50 << 20)
    print(f"device: {props.name}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    print(f"\n| shape (n x k) | M | torch FP16 linear us | torch int4 (tinygemm) us | int4 GB/s |")
    print("|---|---:|---:|---:|---:|")
    g = a.group
    for n, k, what in SHAPES:
        packed_bytes = n * k // 2 + (k // g) * n * 4
        copies_q = max(2, 3 * l2 // packed_bytes + 1)
        copies_f = max(2, 3 * l2 // (n * k * 2) + 1)
        qs, szs = [], []
        for c in range(copies_q):
            w_u8 = torch.randint(0, 256, (n, k // 2), dtype=torch.uint8, device=dev)
            qs.append(torch.ops.aten._convert_weight_to_int4pack(w_u8, a.inner_k_tiles))
            sz = torch.empty((k // g, n, 2), dtype=torch.bfloat16, device=dev)
            sz[..., 0].uniform_(0.002, 0.02)
            sz[..., 1].uniform_(-0.1, 0.1)
            szs.append(sz)
        wf = [torch.empty((n, k), dtype=torch.float16, device=dev).uniform_(-0.05, 0.05)
              for _ in range(copies_f)]
        for m in [int(v) for v in a.m.split(",")]:
            xb = torch.empty((m, k), dtype=torch.bfloat16, device=dev).uniform_(-1, 1)
            xh = xb.to(torch.float16)
            calls = 2 * max(copies_q, copies_f)
            t16 = time_graph([lambda i=i: torch.nn.functional.linear(xh, wf[i % copies_f])
                              for i in range(calls)], a.reps)
            try:
                t4 = time_graph([lambda i=i: torch.ops.aten._weight_int4pack_mm(
                    xb, qs[i % copies_q], g, szs[i % copies_q]) for i in range(calls)], a.reps)
                gbs = (packed_bytes + m * k * 2 + m * n * 2) / t4 * 1e-3
                print(f"| {what} {n} x {k} | {m} | {t16:.2f} | {t4:.2f} | {gbs:.0f} |", flush=True)
            except Exception as e:  # report, keep the FP16 number
                print(f"| {what} {n} x {k} | {m} | {t16:.2f} | failed: {type(e).__name__}: "
                      f"{str(e).splitlines()[0][:120]} | |", flush=True)
        del qs, szs, wf
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
