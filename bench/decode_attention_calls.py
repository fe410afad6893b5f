"""Decode attention calls for a kernel profiler (ncu): one query row per head against GQA, MHA
and MQA caches of 4096 keys and a GQA cache of 32768 (bf16, 32 query heads, D 128), three
calls each, in kiln or (--torch) in PyTorch's scaled_dot_product_attention, to set the two
sides' kernels beside each other. Per-kernel times come from the profiler; this script times
nothing itself.

    ncu --clock-control none -k regex:decode --metrics gpu__time_duration.sum,dram__bytes_read.sum \\
        python3 bench/decode_attention_calls.py
    ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum \\
        python3 bench/decode_attention_calls.py --torch
"""
import argparse

SHAPES = [(32, 8, 4096), (32, 32, 4096), (32, 1, 4096), (32, 8, 32768)]  # query heads, kv heads, keys


def kiln_calls():
    import kiln as kn
    from kiln import fast

    for hq, hkv, length in SHAPES:
        q = kn.random.normal((1, hq, 1, 128)).astype(kn.bfloat16)
        k = kn.random.normal((1, hkv, length, 128)).astype(kn.bfloat16)
        v = kn.random.normal((1, hkv, length, 128)).astype(kn.bfloat16)
        kn.eval(q, k, v)
        for _ in range(3):
            kn.eval(fast.scaled_dot_product_attention(q, k, v, scale=128 ** -0.5))
        print(f"kiln: {hq} query heads, {hkv} kv heads, {length} keys: done", flush=True)


def torch_calls():
    import torch
    import torch.nn.functional as F

    for hq, hkv, length in SHAPES:
        q = torch.randn(1, hq, 1, 128, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, hkv, length, 128, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, hkv, length, 128, device="cuda", dtype=torch.bfloat16)
        for _ in range(3):
            F.scaled_dot_product_attention(q, k, v, scale=128 ** -0.5, enable_gqa=hq != hkv)
        torch.cuda.synchronize()
        print(f"torch: {hq} query heads, {hkv} kv heads, {length} keys: done", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch", action="store_true", help="PyTorch's calls instead of kiln's")
    (torch_calls if parser.parse_args().torch else kiln_calls)()
