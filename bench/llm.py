#!/usr/bin/env python3
"""LLM benchmark driver: kiln's bench/llm_bench beside PyTorch / transformers in the same run.

    python3 bench/llm.py --build build-gpu [--layers 32] [--skip-transformers]

Llama-3.1-8B shape, random bf16 weights, batch 1. Peers: torch SDPA for attention alone,
transformers (eager, dynamic cache) for prefill and decode. Floors: bytes read per decode step /
the read bandwidth kiln measured; attention decode bytes / the same bandwidth.
"""
import argparse
import subprocess
import sys
import time


def run_kiln(build, layers, prompt, gen):
    out = subprocess.run([f"{build}/llm_bench", "--layers", str(layers), "--prompt", str(prompt), "--gen", str(gen)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"llm_bench failed:\n{out.stdout}\n{out.stderr}")
    r = {}
    for line in out.stdout.splitlines():
        k, v = line.split()
        try:
            r[k] = float(v)
        except ValueError:
            r[k] = v
    return r


def cuda_time(fn, reps=50):
    import torch
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) / reps)
    return sorted(ts)[len(ts) // 2]


def graph_time(fn):
    """fn's GPU time: captured once as a CUDA graph, then replayed."""
    import torch
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return cuda_time(g.replay)


CHAIN = 16  # decode attention calls per replayed graph (bench/llm_bench.cpp's kDecodeChain)


def torch_attention():
    import torch
    import torch.nn.functional as F
    r = {}
    H, D = 32, 128
    for kv in (32, 8, 1):
        for L in (4096, 32768):
            if L == 32768 and kv != 8:
                continue
            q = torch.randn(1, H, 1, D, device="cuda", dtype=torch.bfloat16)
            k = torch.randn(1, kv, L, D, device="cuda", dtype=torch.bfloat16)
            v = torch.randn_like(k)
            fn = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=kv != H)
            r[f"attn_decode_kv{kv}_L{L}_us"] = cuda_time(fn) * 1e6

            def chain():  # CHAIN calls, each on the last one's output, as kiln's graph figure
                x = q
                for _ in range(CHAIN):
                    x = F.scaled_dot_product_attention(x, k, v, enable_gqa=kv != H)
                return x
            r[f"attn_decode_graph_kv{kv}_L{L}_us"] = graph_time(chain) / CHAIN * 1e6
    L = 4096
    for kv in (32, 8, 1):
        q = torch.randn(1, H, L, D, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, kv, L, D, device="cuda", dtype=torch.bfloat16)
        v = torch.randn_like(k)
        t = cuda_time(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=kv != H), reps=3)
        r[f"attn_prefill_kv{kv}_tflops"] = 4.0 * H * L * L * D / 2 / t / 1e12
    return r


def transformers_llm(layers, prompt, gen):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=layers,
                      num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0,
                      rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                        original_max_position_embeddings=8192), max_position_embeddings=131072)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    ids = torch.randint(0, 128256, (1, prompt), device="cuda")
    r = {}
    with torch.no_grad():
        for i in range(3):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(ids, logits_to_keep=1)
            torch.cuda.synchronize()
            t = time.perf_counter() - t0
        r["prefill_tokens_per_s"] = prompt / t
        torch.cuda.reset_peak_memory_stats()
        out = model.generate(ids[:, :128], max_new_tokens=8, min_new_tokens=8, do_sample=False)  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model.generate(ids[:, :128], max_new_tokens=gen, min_new_tokens=gen, do_sample=False)
        torch.cuda.synchronize()
        r["decode_tokens_per_s"] = gen / (time.perf_counter() - t0)
        r["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    del model
    torch.cuda.empty_cache()
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--prompt", type=int, default=2048)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--skip-transformers", action="store_true")
    a = ap.parse_args()
    k = run_kiln(a.build, a.layers, a.prompt, a.gen)
    try:
        t = torch_attention()
        hf = {} if a.skip_transformers else transformers_llm(a.layers, a.prompt, 64)
    except ImportError as e:
        print(f"(peers unavailable: {e})")
        t, hf = {}, {}
    bw = k["read_bandwidth_gbs"]
    print(f"\nLlama-3.1-8B shape ({a.layers} layers), bf16, batch 1; read bandwidth measured {bw:.0f} GB/s")
    print(f"{'figure':44s} {'kiln':>10s} {'peer':>10s} {'floor':>10s}")
    floor_tps = bw / k["decode_bytes_gb"]
    rows = [
        ("decode tokens/s (transformers eager)", k["decode_tokens_per_s"], hf.get("decode_tokens_per_s"), floor_tps),
        ("decode tokens/s, CUDA graph per step", k.get("decode_graph_tokens_per_s"), None, floor_tps),
        ("prefill tokens/s, 2048 (transformers)", k["prefill_tokens_per_s"], hf.get("prefill_tokens_per_s"), None),
        ("time to first token ms, 2048 prompt", k["time_to_first_token_ms"], None, None),
        ("peak memory GB (transformers)", k["peak_memory_gb"], hf.get("peak_memory_gb"),
         k["weights_gb"] + k["kv_cache_gb"]),
    ]
    for key in sorted(x for x in k if x.startswith("attn_decode")):
        kv = int(key.split("_kv")[1].split("_")[0])
        L = int(key.split("_L")[1].split("_")[0])
        floor = 2 * kv * L * 128 * 2 / (bw * 1e9) * 1e6
        graph = "_graph" in key
        rows.append((f"attention decode us{' (graph)' if graph else ''}, kv {kv}, {L} keys (torch)", k[key],
                     t.get(key), floor))
    for key in sorted(x for x in k if x.startswith("attn_prefill")):
        rows.append((f"attention prefill TFLOP/s causal 4096, kv {key.split('_kv')[1].split('_')[0]} (torch)",
                     k[key], t.get(key), None))
    for name, kv_, peer, floor in rows:
        f = lambda x: "-" if x is None else f"{x:10.1f}"
        print(f"{name:44s} {f(kv_)} {f(peer)} {f(floor)}")
    print("kiln: " + ", ".join(f"{key} {k[key]:.1f}" for key in
                               ("decode_ms_per_token", "graph_build_us_per_token", "kernels_per_token", "init_seconds")
                               if key in k))


if __name__ == "__main__":
    main()
