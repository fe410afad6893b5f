#!/usr/bin/env python3
"""Where the GPU time goes: every kernel of one pass, timed by Nsight Compute, summed by name.

    python3 bench/profile_kernels.py -- ./build-gpu/vision_bench --batches 256 --dtypes bfloat16 --profile
    python3 bench/profile_kernels.py -- ./build-gpu/llm_bench --layers 1 --skip-attention --profile-prefill
    python3 bench/profile_kernels.py --torch-resnet50 256     # PyTorch's kernels for the same pass

The kiln programs mark one pass with kiln::profiler_start/stop (their --profile flags); ncu runs
with --profile-from-start off and records only that pass, each kernel's duration at the GPU's
own clocks. --torch-resnet50 B times torchvision's ResNet-50 (bf16, channels-last, cuDNN
benchmark mode) with torch.profiler instead, for a side-by-side table.
"""
import argparse
import collections
import csv
import io
import re
import shutil
import subprocess
import sys


def short(name, width=90):
    name = re.sub(r"\(.*", "", name) if not name.startswith("void ") else re.sub(r"\(.*", "", name[5:])
    return name if len(name) <= width else name[: width - 3] + "..."


def table(durations_us, title):
    total = sum(sum(v) for v in durations_us.values())
    print(f"## {title}: {sum(len(v) for v in durations_us.values())} kernels, {total:.1f} us")
    print(f"{'total us':>10} {'share':>6} {'count':>6} {'mean us':>9}  kernel")
    for name, v in sorted(durations_us.items(), key=lambda kv: -sum(kv[1])):
        print(f"{sum(v):10.1f} {100 * sum(v) / total:5.1f}% {len(v):6d} {sum(v) / len(v):9.2f}  {short(name)}")
    sys.stdout.flush()


def run_ncu(cmd):
    ncu = shutil.which("ncu") or "/usr/local/cuda/bin/ncu"
    full = [ncu, "--profile-from-start", "off", "--clock-control", "none", "--metrics",
            "gpu__time_duration.sum", "--csv", "--print-units", "base"] + cmd
    proc = subprocess.run(full, capture_output=True, text=True)
    lines = proc.stdout.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
    if start is None:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        sys.exit(f"ncu produced no kernel table (exit {proc.returncode})")
    for l in lines[:start]:
        if not l.startswith("=="):
            print(l)
    scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "second": 1e6}
    durations = collections.defaultdict(list)
    for row in csv.DictReader(io.StringIO("\n".join(lines[start:]))):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(row["Metric Value"].replace(",", ""))
        durations[row["Kernel Name"]].append(value * scale.get(row.get("Metric Unit", "nsecond"), 1e-3))
    table(durations, "ncu: " + " ".join(cmd))


def run_torch_resnet50(batch):
    import torch
    import torchvision

    torch.backends.cudnn.benchmark = True
    model = torchvision.models.resnet50(weights=None).cuda().to(torch.bfloat16).to(memory_format=torch.channels_last)
    model.eval()
    x = torch.randn(batch, 3, 224, 224, device="cuda", dtype=torch.bfloat16).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            model(x)
            torch.cuda.synchronize()
    durations = collections.defaultdict(list)
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            durations[e.name].append(e.device_time)
    table(durations, f"torch.profiler: torchvision ResNet-50 bf16 channels-last batch {batch}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-resnet50", type=int, metavar="BATCH")
    ap.add_argument("cmd", nargs="*")
    args = ap.parse_args()
    if args.torch_resnet50:
        run_torch_resnet50(args.torch_resnet50)
    if args.cmd:
        run_ncu(args.cmd)


if __name__ == "__main__":
    main()
