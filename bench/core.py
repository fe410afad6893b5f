#!/usr/bin/env python3
"""Core benchmarks: kiln beside PyTorch (measured in this same run) and the hardware floor.

    python3 bench/core.py [--build build] [--quick]

Runs build/core_bench (kiln's figures as JSON lines), times the same operations in PyTorch when
it is installed, and prints one table. The floor of a memory-bound op is its bytes over the
measured device copy bandwidth; of a matmul, its FLOPs over the measured large-GEMM rate.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def kiln_figures(build, quick):
    cmd = [os.path.join(build, "core_bench")] + (["--quick"] if quick else [])
    # The CPU figures are for 2 threads, kiln's and OpenBLAS's alike (the CPU targets' setting).
    env = dict(os.environ, KILN_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return {r["name"]: r for r in (json.loads(l) for l in out.splitlines() if l.startswith("{"))}


def torch_figures(quick):
    try:
        import torch
    except ImportError:
        return {}
    res = {}

    def timed(fn, reps=7, inner=5):
        fn()
        sync()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            sync()
            ts.append((time.perf_counter() - t0) / inner)
        return sorted(ts)[len(ts) // 2]

    if torch.cuda.is_available():
        sync = torch.cuda.synchronize
        gib = 1 << 30
        for dt, tag in ((torch.bfloat16, "bfloat16"), (torch.float32, "float32")):
            n = (gib // 16 if quick else gib) // torch.tensor([], dtype=dt).element_size()
            x = torch.rand(n, device="cuda", dtype=dt) * 2 - 1
            y = torch.rand(n, device="cuda", dtype=dt) * 2 - 1
            res["gpu copy " + tag] = timed(lambda: x.clone())
            res["gpu add " + tag] = timed(lambda: x + y)
            res["gpu exp " + tag] = timed(lambda: torch.exp(x))
            res["gpu sum all " + tag] = timed(lambda: x.sum())
            rows = x.view(-1, 4096)
            res["gpu sum last axis " + tag] = timed(lambda: rows.sum(-1))
            del x, y, rows
        m = 2048 if quick else 8192
        a = torch.rand(m, m, device="cuda", dtype=torch.bfloat16)
        b = torch.rand(m, m, device="cuda", dtype=torch.bfloat16)
        res[f"gpu matmul {m}^3 bf16"] = timed(lambda: a @ b)
        x = torch.rand(1, 4096, device="cuda", dtype=torch.bfloat16)
        w = torch.rand(4096, 14336, device="cuda", dtype=torch.bfloat16)
        res["gpu matmul 1x4096x14336 bf16"] = timed(lambda: x @ w, 9, 50)
        n = 32 if quick else 256
        x = torch.rand(n, 64, 112, 112, device="cuda", dtype=torch.bfloat16).to(memory_format=torch.channels_last)
        res["gpu max_pool 3x3/2 bf16"] = timed(lambda: torch.nn.functional.max_pool2d(x, 3, 2, 1))
        del x
    sync = lambda: None
    torch.set_num_threads(2)
    n = 256 if quick else 1024
    a = torch.rand(n, n)
    b = torch.rand(n, n)
    res[f"cpu matmul {n}^3 f32"] = timed(lambda: a @ b)
    n = (4 if quick else 64) << 20
    x = torch.rand(n)
    y = torch.rand(n)
    res["cpu add f32"] = timed(lambda: x + y)
    x = torch.rand(1 if quick else 8, 64, 112, 112).to(memory_format=torch.channels_last)
    res["cpu max_pool 3x3/2 f32"] = timed(lambda: torch.nn.functional.max_pool2d(x, 3, 2, 1))
    return res


def cold_start(build):
    """Seconds from process start to the first result, for kiln and (if installed) PyTorch."""
    t0 = time.perf_counter()
    subprocess.run([os.path.join(build, "cold_start")], check=True, capture_output=True)
    kiln_t = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c",
                        "import torch; d='cuda' if torch.cuda.is_available() else 'cpu';"
                        "print((torch.arange(1024., device=d)*2+1)[1023].item())"],
                       capture_output=True)
    torch_t = time.perf_counter() - t0 if r.returncode == 0 else None
    return kiln_t, torch_t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    k = kiln_figures(args.build, args.quick)
    t = torch_figures(args.quick)

    # Ceilings measured in this run: device copy bandwidth (bytes read + written), and the best
    # large-GEMM rate of kiln and PyTorch.
    copy_bw = {}
    for dt in ("bfloat16", "float32"):
        r = k.get("gpu copy " + dt)
        if r:
            copy_bw[dt] = r["bytes"] / min(r["seconds"], t.get("gpu copy " + dt, float("inf")))
    gemm_rate = None
    for name, r in k.items():
        if name.startswith("gpu matmul") and "^3" in name:
            gemm_rate = r["flops"] / min(r["seconds"], t.get(name, float("inf")))
    print(f"{'benchmark':<36}{'kiln':>12}{'torch':>12}{'floor':>12}{'kiln/floor':>12}  kiln rate")
    for name, r in k.items():
        s = r["seconds"]
        floor = None
        if name.startswith("gpu") and "matmul" not in name and r["bytes"]:
            dt = "bfloat16" if "bfloat16" in name else "float32"
            floor = r["bytes"] / copy_bw[dt] if copy_bw.get(dt) else None
        if "matmul" in name and name.startswith("gpu") and gemm_rate:
            floor = max(r["flops"] / gemm_rate, r["bytes"] / (copy_bw.get("bfloat16") or 1e30))
        rate = ""
        if r["flops"]:
            rate = f"{r['flops'] / s / 1e12:.1f} TFLOP/s"
        elif r["bytes"]:
            rate = f"{r['bytes'] / s / 1e12:.3f} TB/s"
        if name.startswith("cpu graph"):
            rate = f"{s / 10000 * 1e6:.2f} us/op"
        tt = t.get(name)
        fmt = lambda v: f"{v * 1e3:10.3f}ms" if v is not None else f"{'-':>12}"
        pct = f"{(floor / s) * 100:10.1f}%" if floor else f"{'-':>11}"
        print(f"{name:<36}{fmt(s)}{fmt(tt)}{fmt(floor)}{pct}  {rate}")
    ks, ts = cold_start(args.build)
    torch_cell = f"{ts * 1e3:10.1f}ms" if ts is not None else f"{'-':>12}"
    print(f"{'cold start to first result':<36}{ks * 1e3:10.1f}ms{torch_cell}")


if __name__ == "__main__":
    main()
