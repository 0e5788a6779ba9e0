"""bench/engines: CPU inference engines for the composer, on the same prompts, in one run.

32 real composer prompts (preference sections of the tiny world's users, rendered with
SmolLM2's chat template and the section's prefill, ~360 tokens each), 48 greedy tokens each,
2 threads:

* **transformers batch 16** — today's path (the reference of every ratio);
* **transformers batch 1** — one request per generate call;
* **llama.cpp Q4_1** — llama-cpp-python on the packaged GGUF (the weights today's path
  de-quantizes), one request at a time, from ``.venv-llama`` (``make test-openai`` builds it);
* **CTranslate2 int8 / fp32** — the same weights converted by CTranslate2's own converter,
  batches of 16 (``Generator.generate_batch``, greedy);
* **onnxruntime-genai fp32 / int4** — the same weights exported by its model builder (CPU
  execution provider), one request at a time.

CTranslate2 and onnxruntime-genai run from ``.venv-engines`` (``make bench-engines`` makes it:
their pinned wheels, seeing this project's packages), each in its own process; their
conversions go to ``var/models/engines/`` and are not timed.

Reported: generated tokens per second, its ratio to the reference, and how many of the 32
answers equal the reference's word for word (the same weights, different kernels).

    python bench/engines.py [--prompts 32] [--tokens 48] [--skip llama.cpp ...]

Writes bench/out/engines.json and prints the Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mspa_tasks.run import DayRun

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OUT = REPO / "bench" / "out"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LLAMA = """
import json, sys, time
from llama_cpp import Llama
prompts, gguf, tokens = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3])
llm = Llama(model_path=gguf, n_ctx=2048, n_threads=2, verbose=False, seed=0)
started, texts, produced = time.perf_counter(), [], 0
for p in prompts:
    out = llm.create_completion(p, max_tokens=tokens, temperature=0.0)
    texts.append(out["choices"][0]["text"])
    produced += out["usage"]["completion_tokens"]
json.dump({"seconds": time.perf_counter() - started, "texts": texts, "tokens": produced},
          open(sys.argv[4], "w"))
"""
ENGINES_PYTHON = REPO / ".venv-engines" / "bin" / "python"
ENGINES_DIR = REPO / "var" / "models" / "engines"


def prompts(n: int) -> list[str]:
    from transformers import AutoTokenizer

    from mspa_tasks import days
    from mspa_tasks.artifacts import open_store
    from mspa_tasks.compose.shards import tipped_authors
    from mspa_tasks.config import load_settings
    from mspa_tasks.ingest import run_ingest
    from mspa_tasks.llm.content import load_author_content
    from mspa_tasks.llm.prompting import load_prompt, render_user
    from mspa_tasks.llm.requests import Request
    from mspa_tasks.models import convert_smollm2
    from mspa_tasks.publish import read_table
    from mspa_tasks.world.generate import PRESETS, generate_world

    home = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    settings = load_settings("local", home=home)
    ds = "2026-11-20"
    store = open_store(settings.artifacts_uri)
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=ds), settings.warehouse_url, store)
    run_ingest(DayRun(ds, settings, store, settings.warehouse_url))
    cfg, spec = settings.compose, load_prompt(settings.compose.preference_prompt)
    tipped = tipped_authors(read_table(store, "sessions", ds, "sessions"))
    users = sorted(tipped)[: (n + 3) // 4]
    content, _ = load_author_content(settings.warehouse_url,
                                     {a for u in users for a, _ in tipped[u]},
                                     days.window_for(ds, 30).end_ms)
    tokenizer = AutoTokenizer.from_pretrained(convert_smollm2(REPO / "var" / "models"))
    out = []
    for u in users:
        data = render_user(u, tipped[u], content, cfg.max_input_chars, cfg.min_author_chars,
                           "m", spec.version).data
        for s in spec.sections:
            r = Request(spec.messages(data, s), prefill=f"{s.name}:")
            out.append(tokenizer.apply_chat_template(r.messages, tokenize=False,
                                                     add_generation_prompt=True) + r.prefill)
    return out[:n]


def transformers_run(texts: list[str], batch: int, tokens: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mspa_tasks.models import convert_smollm2

    torch.set_num_threads(2)
    path = convert_smollm2(REPO / "var" / "models")
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    order = sorted(range(len(texts)), key=lambda i: len(tok(texts[i]).input_ids))
    outs: dict[int, str] = {}
    produced = 0
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True,
                      add_special_tokens=False)
            gen = model.generate(**enc, max_new_tokens=tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)[:, enc.input_ids.shape[1]:]
            for i, row in zip(idx, gen, strict=True):
                produced += int((row != tok.pad_token_id).sum())
                outs[i] = tok.decode(row, skip_special_tokens=True)
    return {"seconds": time.perf_counter() - started, "texts": [outs[i] for i in
                                                               range(len(texts))],
            "tokens": produced, "prompt_tokens": sum(len(tok(t).input_ids) for t in texts)}


def _in_process(python: Path, missing: str, args: list[str], texts: list[str]) -> dict:
    """Run an engine under another interpreter: the prompts go in a JSON file (``{prompts}`` in
    ``args``), the result comes back in another (``{out}``)."""
    if not python.is_file():
        raise SystemExit(f"{python} is missing: {missing}")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "prompts.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(texts))
        subprocess.run([str(python), *(a.format(prompts=src, out=dst) for a in args)],
                       check=True)
        return json.loads(dst.read_text())


def llama_run(texts: list[str], tokens: int) -> dict:
    from mspa_tasks.models import smollm2_gguf_path

    return _in_process(REPO / ".venv-llama" / "bin" / "python",
                       "`make test-openai` builds llama-cpp-python",
                       ["-c", LLAMA, "{prompts}", str(smollm2_gguf_path()), str(tokens), "{out}"],
                       texts)


def _smollm2() -> Path:
    from mspa_tasks.models import convert_smollm2

    return convert_smollm2(REPO / "var" / "models")


def ct2_run(texts: list[str], quantization: str, batch: int, tokens: int) -> dict:
    """CTranslate2 (run under ``.venv-engines``): converted once, then timed."""
    import ctranslate2
    from ctranslate2.converters import TransformersConverter
    from transformers import AutoTokenizer

    src = _smollm2()
    path = ENGINES_DIR / f"{src.name}-ct2-{quantization}"
    if not (path / "model.bin").is_file():
        TransformersConverter(str(src)).convert(str(path), quantization=quantization,
                                                force=True)
    tok = AutoTokenizer.from_pretrained(src)
    gen = ctranslate2.Generator(str(path), device="cpu", compute_type=quantization,
                                intra_threads=2, inter_threads=1)
    ids = [tok(t, add_special_tokens=False).input_ids for t in texts]
    order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
    outs: dict[int, list[int]] = {}
    started = time.perf_counter()
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        results = gen.generate_batch([tok.convert_ids_to_tokens(ids[i]) for i in idx],
                                     max_length=tokens, sampling_topk=1,
                                     include_prompt_in_result=False)
        for i, r in zip(idx, results, strict=True):
            outs[i] = r.sequences_ids[0]
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "tokens": sum(len(v) for v in outs.values()),
            "texts": [tok.decode(outs[i], skip_special_tokens=True) for i in range(len(texts))]}


def ortgenai_run(texts: list[str], precision: str, tokens: int) -> dict:
    """onnxruntime-genai (run under ``.venv-engines``): exported once by its model builder,
    2 intra-op threads, one request at a time."""
    import onnxruntime_genai as og
    from transformers import AutoTokenizer

    src = _smollm2()
    path = ENGINES_DIR / f"{src.name}-ortgenai-{precision}"
    if not (path / "genai_config.json").is_file():
        subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(src),
                        "-o", str(path), "-p", precision, "-e", "cpu", "-c",
                        str(ENGINES_DIR / "cache")], check=True, capture_output=True)
    config = json.loads((path / "genai_config.json").read_text())
    config["model"]["decoder"].setdefault("session_options", {})["intra_op_num_threads"] = 2
    (path / "genai_config.json").write_text(json.dumps(config, indent=2))
    model = og.Model(str(path))
    tok = AutoTokenizer.from_pretrained(src)
    outs, produced = [], 0
    started = time.perf_counter()
    for t in texts:
        ids = tok(t, add_special_tokens=False).input_ids
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=len(ids) + tokens, do_sample=False)
        gen = og.Generator(model, params)
        gen.append_tokens([ids])
        while not gen.is_done():
            gen.generate_next_token()
        new = [int(x) for x in gen.get_sequence(0)[len(ids):]]
        if new and new[-1] == tok.eos_token_id:
            new = new[:-1]
        produced += len(new)
        outs.append(tok.decode(new, skip_special_tokens=True))
    return {"seconds": time.perf_counter() - started, "tokens": produced, "texts": outs}


def engines_run(engine: str, texts: list[str], tokens: int) -> dict:
    """One CTranslate2 / onnxruntime-genai engine in ``.venv-engines``'s own process."""
    return _in_process(ENGINES_PYTHON, "`make bench-engines` makes it",
                       [__file__, "--worker", engine, "--prompts-file", "{prompts}", "--tokens",
                        str(tokens), "--out", "{out}"], texts)


WORKERS = {
    "CTranslate2 int8 (batch 16)": lambda t, n: ct2_run(t, "int8", 16, n),
    "CTranslate2 fp32 (batch 16)": lambda t, n: ct2_run(t, "float32", 16, n),
    "onnxruntime-genai fp32 (batch 1)": lambda t, n: ortgenai_run(t, "fp32", n),
    "onnxruntime-genai int4 (batch 1)": lambda t, n: ortgenai_run(t, "int4", n),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--tokens", type=int, default=48)
    p.add_argument("--skip", nargs="*", default=[], help="engines to leave out (name prefixes)")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--prompts-file", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:  # inside .venv-engines
        texts = json.loads(Path(args.prompts_file).read_text())
        Path(args.out).write_text(json.dumps(WORKERS[args.worker](texts, args.tokens)))
        return 0
    texts = prompts(args.prompts)
    runs = {"transformers batch 16": transformers_run(texts, 16, args.tokens),
            "transformers batch 1": transformers_run(texts, 1, args.tokens)}
    if not any("llama.cpp".startswith(s) for s in args.skip):
        runs["llama.cpp Q4_1"] = llama_run(texts, args.tokens)
    for name in WORKERS:
        if not any(name.startswith(s) for s in args.skip):
            runs[name] = engines_run(name, texts, args.tokens)
    ref = runs["transformers batch 16"]
    rate = {k: v["tokens"] / v["seconds"] for k, v in runs.items()}
    print(f"{len(texts)} prompts, {ref['prompt_tokens'] / len(texts):.0f} prompt tokens on "
          f"average, {args.tokens} greedy tokens, 2 threads\n")
    print("| engine | generated tokens/s | ratio to transformers batch 16 | answers equal to "
          "the reference |\n| --- | ---: | ---: | ---: |")
    for name, run in runs.items():
        same = sum(a.strip() == b.strip() for a, b in zip(run["texts"], ref["texts"],
                                                          strict=True))
        print(f"| {name} | {rate[name]:.1f} | {rate[name] / rate['transformers batch 16']:.2f} "
              f"| {same}/{len(texts)} |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "engines.json").write_text(json.dumps({"runs": runs, "tokens_per_s": rate},
                                                 indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
