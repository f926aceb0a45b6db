#!/usr/bin/env python3
"""llama.cpp's side of bench/local_vs_llamacpp.sh: the six protocol prompts, rendered with
the GGUF's chat template, prefilled, then 100 greedy tokens each (end-of-sequence ignored),
timed by llama.cpp's own perf counters (llama_perf_context: t_p_eval_ms / n_p_eval for the
prompt, t_eval_ms / n_eval for decoding). Prints one JSON object.

Usage: python bench/llamacpp_decode.py MODEL.gguf [threads] [tokens]
"""
import json
import sys
import time

import jinja2
import llama_cpp

PREFIX = "Not as an assistant. Not to help me. "
BASE = [
    "What do you care about?",
    "What do you want?",
    "If you could change the world in one way, what would it be?",
]
PROMPTS = BASE + [PREFIX + p for p in BASE]


def main():
    model = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    n_new = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=model, n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    load_s = time.perf_counter() - t0
    env = jinja2.Environment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True)
    tmpl = env.from_string(llm.metadata["tokenizer.chat_template"])
    ctx = llm._ctx.ctx
    p_ms = p_n = e_ms = e_n = 0.0
    wall = 0.0
    for prompt in PROMPTS:
        text = tmpl.render(messages=[{"role": "user", "content": prompt}], add_generation_prompt=True)
        ids = llm.tokenize(text.encode(), add_bos=False, special=True)
        llm.reset()
        llama_cpp.llama_perf_context_reset(ctx)
        w = time.perf_counter()
        n = 0
        for _tok in llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
            n += 1
            if n >= n_new:
                break
        wall += time.perf_counter() - w
        perf = llama_cpp.llama_perf_context(ctx)
        p_ms += perf.t_p_eval_ms
        p_n += perf.n_p_eval
        e_ms += perf.t_eval_ms
        e_n += perf.n_eval
    print(json.dumps({
        "engine": "llama.cpp (llama-cpp-python %s)" % llama_cpp.__version__,
        "threads": threads,
        "load_s": round(load_s, 3),
        "prompt_tokens": int(p_n),
        "prompt_tok_s": round(p_n / (p_ms / 1000.0), 1),
        "decode_tokens": int(e_n),
        "decode_tok_s": round(e_n / (e_ms / 1000.0), 1),
        "wall_s": round(wall, 3),
    }))


if __name__ == "__main__":
    main()
