#!/usr/bin/env python3
"""Vision benchmark driver: kiln's bench/vision_bench beside torchvision's ResNet-50 in one run.

    python3 bench/vision.py --build build [--batches 1,64,256] [--dtypes float32,bfloat16]

Random weights, channels-last, eval mode (kiln folds batch norm into the convolutions). The floor
is ResNet-50's 4.1 GFLOP per 224x224 image (multiply-adds x 2) over the matmul rate kiln measured
in the same run. On a CPU run both use the same threads (KILN_NUM_THREADS, torch.set_num_threads).
"""
import argparse
import os
import subprocess
import sys
import time

GFLOP_PER_IMAGE = 8.2  # 4.1 G multiply-adds


def run_kiln(build, batches, dtypes):
    out = subprocess.run([os.path.join(build, "vision_bench"), "--batches", batches, "--dtypes", dtypes],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"vision_bench failed:\n{out.stdout}\n{out.stderr}")
    r = {}
    for line in out.stdout.split("\n"):
        if line.strip():
            k, v = line.split()
            r[k] = v if k == "device" else float(v)
    return r


def median_ms(fn, device, reps=7, inner=5):
    import torch
    fn()
    ts = []
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) / inner)
    return sorted(ts)[len(ts) // 2] * 1e3


def run_torch(device, batches, dtypes, threads):
    import torch
    import torchvision
    torch.set_num_threads(threads)
    torch.backends.cudnn.benchmark = True  # its fastest convolutions, as kiln measures its own
    r = {}
    for dt_name in dtypes:
        dt = getattr(torch, dt_name)
        model = torchvision.models.resnet50(weights=None).eval().to(device=device, dtype=dt)
        model = model.to(memory_format=torch.channels_last)
        for b in batches:
            x = torch.randn(b, 3, 224, 224, device=device, dtype=dt).to(memory_format=torch.channels_last)
            with torch.no_grad():
                r[f"resnet50_{dt_name}_b{b}_ms"] = median_ms(lambda: model(x), device)
                if device == "cuda":
                    # The forward pass captured as a CUDA graph (what torch.compile's
                    # "reduce-overhead" mode replays), on a side stream as PyTorch requires.
                    s = torch.cuda.Stream()
                    s.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(s):
                        for _ in range(3):
                            model(x)
                    torch.cuda.current_stream().wait_stream(s)
                    g = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(g):
                        model(x)
                    r[f"resnet50_{dt_name}_b{b}_graph_ms"] = median_ms(g.replay, device)
                    del g
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--batches", default="1,64,256")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    a = ap.parse_args()
    threads = int(os.environ.get("KILN_NUM_THREADS", os.cpu_count() or 1))
    k = run_kiln(a.build, a.batches, a.dtypes)
    device = "cuda" if k["device"] == "gpu" else "cpu"
    batches = [int(b) for b in a.batches.split(",")]
    dtypes = a.dtypes.split(",")
    try:
        t = run_torch(device, batches, dtypes, threads)
    except ImportError as e:
        print(f"(torchvision unavailable: {e})")
        t = {}
    print(f"\nResNet-50, random weights, {k['device']}, {threads} threads" if device == "cpu" else
          f"\nResNet-50, random weights, {k['device']}")
    print(f"{'case':28s} {'kiln ms':>10s} {'torch ms':>10s} {'kiln img/s':>11s} {'torch img/s':>11s} {'floor img/s':>11s}")
    f = lambda x: "-" if x is None else f"{x:10.3f}"
    for dt in dtypes:
        rate = k.get(f"matmul_tflops_{dt}", 0)
        floor = rate * 1e12 / (GFLOP_PER_IMAGE * 1e9) if rate else None
        print(f"{dt}: matmul {rate:.1f} TFLOP/s measured by kiln")
        for mode in ("", "_graph"):
            for b in batches:
                key = f"resnet50_{dt}_b{b}{mode}_ms"
                km, tm = k.get(key), t.get(key)
                if km is None and tm is None:
                    continue
                case = f"{dt} batch {b}" + (" CUDA graph" if mode else "")
                print(f"{case:28s} {f(km)} {f(tm)} {f(b / km * 1e3 if km else None):>11s} "
                      f"{f(b / tm * 1e3 if tm else None):>11s} {f(floor):>11s}")


if __name__ == "__main__":
    main()
