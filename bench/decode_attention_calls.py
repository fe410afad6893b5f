"""Decode attention calls for a kernel profiler (ncu): one query row per head against GQA, MHA
and MQA caches of 4096 keys and a GQA cache of 32768 (bf16, 32 query heads, D 128), three
calls each. Per-kernel times come from the profiler; this script times nothing itself.

    ncu --clock-control none -k regex:decode --metrics gpu__time_duration.sum,dram__bytes_read.sum \\
        python3 bench/decode_attention_calls.py
"""
import kiln as kn
from kiln import fast

for hq, hkv, length in [(32, 8, 4096), (32, 32, 4096), (32, 1, 4096), (32, 8, 32768)]:
    q = kn.random.normal((1, hq, 1, 128)).astype(kn.bfloat16)
    k = kn.random.normal((1, hkv, length, 128)).astype(kn.bfloat16)
    v = kn.random.normal((1, hkv, length, 128)).astype(kn.bfloat16)
    kn.eval(q, k, v)
    for _ in range(3):
        kn.eval(fast.scaled_dot_product_attention(q, k, v, scale=128 ** -0.5))
    print(f"{hq} query heads, {hkv} kv heads, {length} keys: done", flush=True)
