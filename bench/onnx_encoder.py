"""bench/onnx_encoder: the text encoder on ONNX Runtime against today's PyTorch path, in one run.

Issue 19, item 3 asks for sentence-transformers' ONNX backend if it is >= 1.5x faster on CPU
with cosine >= 0.999 to today's vectors. That backend needs ``optimum-onnx``, whose every
release pins ``transformers < 4.58`` (this project runs transformers 5): it cannot be installed
beside the pipeline. This bench measures the same thing without it: the packaged
all-MiniLM-L6-v2's transformer exported with ``torch.onnx.export`` (fp32), and that graph
quantised to int8 with ``onnxruntime.quantization.quantize_dynamic``; mean pooling and L2
normalisation as the sentence-transformers model does them; the same tokenizer, batch size and
maximum length; texts sorted by length like ``SentenceTransformer.encode``.

Texts: every author of a generated world (``--preset``, default ``demo``: 1,500 authors), as
``bench/vectors.py`` builds them. Each round encodes all of them with each path (the order
alternates); the figure is the median round. Threads: 2 for both (this machine's cores).

Needs ``onnxruntime`` and ``onnx``, which the pipeline does not install (it keeps the PyTorch
path; see BENCHMARKS.md): ``make bench-onnx`` puts them in ``.venv-onnx``, which sees the
project's packages, and runs

    python bench/onnx_encoder.py [--preset demo] [--rounds 3]

Writes bench/out/onnx_encoder.json and prints Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
OUT = REPO / "bench" / "out"
THREADS = 2


class OnnxEncoder:
    """MiniLM on ONNX Runtime: tokenizer -> graph -> mean pooling -> L2 normalisation."""

    def __init__(self, path: Path, tokenizer, max_length: int, batch_size: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer, self.max_length, self.batch_size = tokenizer, max_length, batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="np")
            feed = {k: v.astype(np.int64) for k, v in enc.items() if k in self.inputs}
            hidden = self.session.run(None, feed)[0]
            mask = enc["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            out[idx] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out


def export(model, tokenizer, folder: Path) -> tuple[Path, Path]:
    """fp32 graph from the PyTorch weights, and its dynamic int8 quantisation."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32, int8 = folder / "model.onnx", folder / "model.int8.onnx"
    sample = tokenizer(["a sample text", "another"], padding=True, return_tensors="pt")
    names = list(sample.keys())
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    class ByName(torch.nn.Module):  # the exporter passes inputs by position
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors):
            return self.inner(**dict(zip(names, tensors, strict=True))).last_hidden_state

    model.eval()
    with torch.no_grad():
        torch.onnx.export(ByName(model), tuple(sample[n] for n in names), str(fp32),
                          input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return fp32, int8


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch
    from vectors import world_texts

    from mspa_tasks.config import load_settings
    from mspa_tasks.vectors.encode import Encoder

    torch.set_num_threads(THREADS)
    _, texts = world_texts(args.preset)
    settings = load_settings("local", home=tempfile.mkdtemp(prefix="bench-onnx-"))
    encoder = Encoder(settings.vectors)  # today's path
    st = encoder.model
    folder = Path(tempfile.mkdtemp(prefix="onnx-encoder-"))
    fp32, int8 = export(st[0].auto_model, st.tokenizer, folder)
    paths = {"onnx fp32": OnnxEncoder(fp32, st.tokenizer, st.max_seq_length,
                                      encoder.batch_size),
             "onnx int8": OnnxEncoder(int8, st.tokenizer, st.max_seq_length,
                                      encoder.batch_size)}
    runs = {"pytorch (today)": lambda: encoder.encode(texts, "bench"),
            **{name: (lambda e=e: e.encode(texts)) for name, e in paths.items()}}
    for fn in runs.values():  # warm-up
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    vectors: dict[str, np.ndarray] = {}
    names = list(runs)
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            started = time.perf_counter()
            vectors[name] = runs[name]()
            seconds[name].append(time.perf_counter() - started)
    ref = vectors["pytorch (today)"]
    base = statistics.median(seconds["pytorch (today)"])
    rows = []
    for name in names:
        cos = (vectors[name] * ref).sum(1)
        med = statistics.median(seconds[name])
        rows.append({"path": name, "seconds": round(med, 3),
                     "texts_per_s": round(len(texts) / med, 1),
                     "ratio": round(base / med, 2), "cos_min": round(float(cos.min()), 5),
                     "cos_mean": round(float(cos.mean()), 6)})
    result = {"preset": args.preset, "texts": len(texts), "rounds": args.rounds,
              "threads": THREADS, "batch_size": encoder.batch_size,
              "max_seq_length": st.max_seq_length, "encoder": encoder.version,
              "onnxruntime": __import__("onnxruntime").__version__,
              "torch": torch.__version__, "rows": rows, "seconds_all": seconds}
    OUT.mkdir(exist_ok=True)
    (OUT / "onnx_encoder.json").write_text(json.dumps(result, indent=2))
    print(f"{len(texts)} author texts ({args.preset}), median of {args.rounds} rounds, "
          f"{THREADS} threads, batch {encoder.batch_size}\n")
    print("| path | s | texts/s | speed vs today | cosine to today (min / mean) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['path']} | {row['seconds']} | {row['texts_per_s']} | {row['ratio']}x | "
              f"{row['cos_min']} / {row['cos_mean']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
