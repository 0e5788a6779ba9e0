"""Batched generation with a model in this process.

* :class:`TextBackend` — a causal LM through transformers (embedded default: the packaged
  SmolLM2-135M-Instruct; production: any hub id or local folder).
* :class:`VisionBackend` — a processor + image-text-to-text model (MiMo-VL-7B-RL,
  Qwen2.5-VL-7B-Instruct, …); requests carry frames as images in the chat messages.

Both sort requests by prompt length and generate in left-padded batches of ``batch_size``
(padding is what a batch wastes; sorting keeps it small), greedy by default, sampled with a
fixed seed for retries. Every answer is the rest of the line after the request's prefill.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

from mspa_tasks.llm.requests import Generation, Request, first_line
from mspa_tasks.progress import Progress

log = logging.getLogger(__name__)


class _BatchedBackend:
    """Length-sorted batching, sampling settings and progress; subclasses encode/decode."""

    modality = "text"

    def __init__(self, batch_size: int, max_new_tokens: int, repetition_penalty: float) -> None:
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError(f"batch_size={batch_size} and max_new_tokens={max_new_tokens} "
                             "must both be >= 1")
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.repetition_penalty = repetition_penalty

    def _lengths(self, requests: list[Request]) -> list[int]:
        raise NotImplementedError

    def _generate_batch(self, batch: list[Request], sampling: dict) -> list[Generation]:
        raise NotImplementedError

    def generate(self, requests: list[Request], seed: int | None = None) -> list[Generation]:
        import torch

        if not requests:
            return []
        lengths = self._lengths(requests)
        order = sorted(range(len(requests)), key=lambda i: lengths[i])
        sampling: dict[str, Any] = {"do_sample": False}
        if seed is not None:
            torch.manual_seed(seed)
            sampling = {"do_sample": True, "temperature": 0.8, "top_p": 0.95}
        results: list[Generation | None] = [None] * len(requests)
        progress = Progress(getattr(self, "label", "generate"), len(requests), log,
                            unit="sequences")
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            with torch.inference_mode():
                outs = self._generate_batch([requests[i] for i in idx], sampling)
            for i, out in zip(idx, outs, strict=True):
                results[i] = out
            progress.update(len(idx))
        return [r for r in results if r is not None]


# Words an extractive answer may always use besides the data's own tokens.
CONNECTORS = (" and", ",", " with", " in", " of", " or", " a", " the", " from", ";", ".")
# Punctuation an extractive answer may not use even if the data has it (it only pads).
BANNED = ("-", " -", "(", " (", ")", "|", " |", "/", " /")


def shared_prefix(prompts: list[str]) -> str:
    r"""The longest common prefix of ``prompts``, cut back to just after a newline so the
    split never falls inside a word (tokens at the seam stay the same).

    >>> shared_prefix(["sys\ndata\nQ1", "sys\ndata\nQ2 longer"])
    'sys\ndata\n'
    """
    common = os.path.commonprefix(prompts)
    cut = common.rfind("\n")
    return common[: cut + 1] if cut >= 0 else ""


class TextBackend(_BatchedBackend):
    """A causal LM (on the GPU in bf16 when there is one). ``one_line`` (the composer): each
    answer is one line, never empty, cut at the first newline; off (the recommender's
    evaluation): the whole greedy completion, up to ``max_new_tokens``."""

    def __init__(self, model_path: str | Path, batch_size: int = 16, max_new_tokens: int = 24,
                 repetition_penalty: float = 1.2, model_version: str | None = None,
                 one_line: bool = True, label: str = "generate",
                 stack_sections: bool = True) -> None:
        super().__init__(batch_size, max_new_tokens, repetition_penalty)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.one_line, self.label, self.stack_sections = one_line, label, stack_sections
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        cuda = torch.cuda.is_available()
        self.model = AutoModelForCausalLM.from_pretrained(
            str(model_path), dtype=torch.bfloat16 if cuda else torch.float32).eval()
        self.model.to("cuda" if cuda else "cpu")
        self.model_version = model_version or Path(str(model_path)).name
        newline = self.tokenizer("\n", add_special_tokens=False).input_ids
        self._no_empty: dict[str, Any] = {}
        self._stop: dict[str, Any] = {}
        if one_line:
            # An answer starts on the header's line: a newline or end-of-text as the very
            # first token would leave the section empty, so neither may come first.
            blank = [i for i in range(len(self.tokenizer))
                     if not self.tokenizer.decode([i]).strip()]
            self._no_empty = {"begin_suppress_tokens":
                              sorted({*blank, self.tokenizer.eos_token_id})}
            self._stop = {"stop_strings": ["\n"], "tokenizer": self.tokenizer}
        self._banned = {t for w in BANNED for t in self.tokenizer(w, add_special_tokens=False)
                        .input_ids} - set(newline)
        self._always = {*newline, self.tokenizer.eos_token_id, *(
            t for w in CONNECTORS for t in self.tokenizer(w, add_special_tokens=False).input_ids)}

    def _vocabulary_processor(self, batch: list[Request]) -> dict[str, Any]:
        """A logits processor limiting each row to its request's vocabulary, if any."""
        if not any(r.vocabulary for r in batch):
            return {}
        import torch
        from transformers import LogitsProcessor, LogitsProcessorList

        size = self.model.get_output_embeddings().weight.shape[0]
        allowed = torch.ones(len(batch), size, dtype=torch.bool)
        for row, r in enumerate(batch):
            if r.vocabulary:
                ids = set(self.tokenizer(r.vocabulary, add_special_tokens=False).input_ids)
                allowed[row] = False
                allowed[row, sorted(ids | self._always)] = True
                allowed[row, sorted(self._banned)] = False

        class OnlyAllowed(LogitsProcessor):
            def __call__(self, input_ids, scores):
                return scores.masked_fill(~allowed[:, : scores.shape[1]], float("-inf"))

        return {"logits_processor": LogitsProcessorList([OnlyAllowed()])}

    def _prompt(self, request: Request) -> str:
        return self.tokenizer.apply_chat_template(
            request.messages, tokenize=False, add_generation_prompt=True) + request.prefill

    def _lengths(self, requests: list[Request]) -> list[int]:
        return [len(ids) for ids in self.tokenizer([self._prompt(r) for r in requests]).input_ids]

    def _generate_batch(self, batch: list[Request], sampling: dict) -> list[Generation]:
        enc = self.tokenizer([self._prompt(r) for r in batch], return_tensors="pt",
                             padding=True).to(self.model.device)
        out = self.model.generate(
            **enc, max_new_tokens=self.max_new_tokens, repetition_penalty=self.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id, **self._stop, **self._no_empty,
            **self._vocabulary_processor(batch), **sampling)
        return self._decode(out[:, enc.input_ids.shape[1]:], enc.attention_mask)

    def label_token_ids(self, labels: list[str]) -> list[int]:
        """The token of each label as it follows "...:" (a space, then the label): what
        :meth:`next_token_logprobs` reads. Labels must be distinct single tokens."""
        tokens = [self.tokenizer(" " + label, add_special_tokens=False).input_ids
                  for label in labels]
        if any(len(t) != 1 for t in tokens) or len({t[0] for t in tokens}) != len(tokens):
            raise ValueError(f"labels {labels} are not distinct single tokens of "
                             f"{self.model_version}; ranking by scoring needs short labels "
                             "(align.examples.candidate_labels = 'letters')")
        return [t[0] for t in tokens]

    def next_token_logprobs(self, requests: list[Request],
                            token_ids: list[list[int]]) -> list[list[float]]:
        """Per request, the log-probability of each of its ``token_ids`` as the next token
        after its prompt and prefill: one forward pass per length-sorted, left-padded batch
        (positions counted from each row's first real token, so padding changes nothing)."""
        import torch

        lengths = self._lengths(requests)
        order = sorted(range(len(requests)), key=lambda i: lengths[i])
        out: list[list[float]] = [[] for _ in requests]
        progress = Progress(f"{self.label}: score", len(requests), log, unit="sequences")
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = self.tokenizer([self._prompt(requests[i]) for i in idx], return_tensors="pt",
                                 padding=True).to(self.model.device)
            positions = (enc.attention_mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = self.model(**enc, position_ids=positions).logits[:, -1, :]
            logp = torch.log_softmax(logits.float(), dim=-1)
            for row, i in enumerate(idx):
                out[i] = logp[row, token_ids[i]].tolist()
            progress.update(len(idx))
        return out

    def _decode(self, new, mask) -> list[Generation]:
        results = []
        for row, m in zip(new, mask, strict=True):
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            produced = int((row != self.tokenizer.pad_token_id).sum())
            results.append(Generation(first_line(text) if self.one_line else text,
                                      int(m.sum()), produced))
        return results

    def generate_groups(self, groups: list[list[Request]],
                        seed: int | None = None) -> list[list[Generation]]:
        """Generate groups of requests that share a long prompt prefix (one user's data,
        asked several questions), encoding each group's prefix once.

        Prefill dominates on CPU (every prompt token costs a full forward pass; a
        24-token answer costs little more), so the prefix's key/value cache is computed once
        per group and copied for each question. All groups must have the same number of
        requests whose suffixes (question + answer header) tokenise to the same length per
        position — true for one prompt spec; otherwise this falls back to :meth:`generate`.

        ``stack_sections`` (the default): every question of a batch's groups is answered in
        one ``generate`` call (batch x questions rows, the prefix cache repeated per row,
        shorter suffixes padded in a masked hole after the prefix) instead of one call per
        question: a third as many decode steps on wider rows (bench/compose tokens).
        """
        import torch

        if not groups:
            return []
        width = len(groups[0])
        prompts = [[self._prompt(r) for r in g] for g in groups]
        prefixes = [shared_prefix(p) for p in prompts]
        suffix_ids = [[self.tokenizer(p[len(pre):], add_special_tokens=False).input_ids
                       for p in ps] for ps, pre in zip(prompts, prefixes, strict=True)]
        uniform = all(len(g) == width for g in groups) and all(
            len({len(s[k]) for s in suffix_ids}) == 1 for k in range(width))
        if not uniform or not all(prefixes):
            flat = self.generate([r for g in groups for r in g], seed)
            return [flat[i * width:(i + 1) * width] for i in range(len(groups))]
        if seed is not None:
            torch.manual_seed(seed)
        sampling = ({"do_sample": True, "temperature": 0.8, "top_p": 0.95}
                    if seed is not None else {"do_sample": False})
        order = sorted(range(len(groups)), key=lambda i: len(prefixes[i]))
        results: list[list[Generation]] = [[] for _ in groups]
        progress = Progress(self.label, len(groups) * width, log, unit="sequences")
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = self.tokenizer([prefixes[i] for i in idx], return_tensors="pt",
                                 padding=True).to(self.model.device)
            positions = (enc.attention_mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                prefix_cache = self.model(**enc, position_ids=positions,
                                          use_cache=True).past_key_values
                if self.stack_sections:
                    gens = self._stacked(enc, prefix_cache, [groups[i] for i in idx],
                                         [suffix_ids[i] for i in idx], sampling)
                    for row, i in enumerate(idx):
                        results[i].extend(gens[row * width:(row + 1) * width])
                    progress.update(len(idx) * width)
                    continue
                for k in range(width):
                    restrict = self._vocabulary_processor([groups[i][k] for i in idx])
                    suffix = torch.tensor([suffix_ids[i][k] for i in idx],
                                          device=self.model.device)
                    input_ids = torch.cat([enc.input_ids, suffix], dim=1)
                    mask = torch.cat([enc.attention_mask, torch.ones_like(suffix)], dim=1)
                    out = self.model.generate(
                        input_ids=input_ids, attention_mask=mask,
                        past_key_values=copy.deepcopy(prefix_cache),
                        max_new_tokens=self.max_new_tokens,
                        repetition_penalty=self.repetition_penalty,
                        pad_token_id=self.tokenizer.pad_token_id, **self._stop,
                        **self._no_empty, **restrict, **sampling)
                    for i, gen in zip(idx, self._decode(out[:, input_ids.shape[1]:], mask),
                                      strict=True):
                        results[i].append(gen)
            progress.update(len(idx) * width)
        return results

    def _stacked(self, enc, prefix_cache, groups: list[list[Request]],
                 suffixes: list[list[list[int]]], sampling: dict) -> list[Generation]:
        """Every question of every group in one ``generate`` call: row ``g * width + k`` is
        group ``g``'s question ``k``, reading the prefix cache repeated ``width`` times; a
        suffix shorter than the longest is left-padded inside a masked hole after the prefix
        (positions follow the mask, so each row sees exactly its own prompt)."""
        import torch

        width = len(groups[0])
        longest = max(len(s) for row in suffixes for s in row)
        pad = self.tokenizer.pad_token_id
        suffix = torch.tensor([[pad] * (longest - len(s)) + s for row in suffixes for s in row],
                              device=self.model.device)
        hole = torch.tensor([[0] * (longest - len(s)) + [1] * len(s)
                             for row in suffixes for s in row], device=self.model.device)
        input_ids = torch.cat([enc.input_ids.repeat_interleave(width, 0), suffix], dim=1)
        mask = torch.cat([enc.attention_mask.repeat_interleave(width, 0), hole], dim=1)
        prefix_cache.batch_repeat_interleave(width)
        out = self.model.generate(
            input_ids=input_ids, attention_mask=mask, past_key_values=prefix_cache,
            max_new_tokens=self.max_new_tokens, repetition_penalty=self.repetition_penalty,
            pad_token_id=pad, **self._stop, **self._no_empty,
            **self._vocabulary_processor([r for g in groups for r in g]), **sampling)
        return self._decode(out[:, input_ids.shape[1]:], mask)


class VisionBackend(_BatchedBackend):
    """Processor + ``AutoModelForImageTextToText``; frames travel as images in the messages."""

    modality = "vision"

    def __init__(self, model_path: str | Path, batch_size: int = 4, max_new_tokens: int = 24,
                 repetition_penalty: float = 1.2, model_version: str | None = None) -> None:
        super().__init__(batch_size, max_new_tokens, repetition_penalty)
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(str(model_path))
        self.processor.tokenizer.padding_side = "left"
        self.model = AutoModelForImageTextToText.from_pretrained(str(model_path)).eval()
        self.model_version = model_version or Path(str(model_path)).name

    @staticmethod
    def _with_images(request: Request) -> list[dict[str, Any]]:
        """The request's messages with its frames as image parts of the last user turn."""
        messages = [dict(m) for m in request.messages]
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        text = messages[last_user]["content"]
        messages[last_user]["content"] = (
            [{"type": "image"} for _ in request.images] + [{"type": "text", "text": text}])
        for i, m in enumerate(messages):
            if i != last_user and isinstance(m["content"], str):
                m["content"] = [{"type": "text", "text": m["content"]}]
        return messages

    def _prompt(self, request: Request) -> str:
        return self.processor.apply_chat_template(
            self._with_images(request), add_generation_prompt=True, tokenize=False) + request.prefill

    def _lengths(self, requests: list[Request]) -> list[int]:
        return [len(self._prompt(r)) + 1000 * len(r.images) for r in requests]

    def _generate_batch(self, batch: list[Request], sampling: dict) -> list[Generation]:
        images = [list(r.images) for r in batch]
        inputs = self.processor(text=[self._prompt(r) for r in batch],
                                images=images if any(images) else None,
                                return_tensors="pt", padding=True)
        tok = self.processor.tokenizer
        out = self.model.generate(
            **inputs, max_new_tokens=self.max_new_tokens,
            repetition_penalty=self.repetition_penalty,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            **sampling)
        new = out[:, inputs["input_ids"].shape[1]:]
        return [Generation(first_line(tok.decode(row, skip_special_tokens=True)),
                           int(mask.sum()), int((row != tok.pad_token_id).sum()))
                for row, mask in zip(new, inputs["attention_mask"], strict=True)]
