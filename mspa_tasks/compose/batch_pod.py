"""The composer's batch job in its GPU pod: ``python -m mspa_tasks.compose.batch_pod --ds D``.

Reads the day's ``requests.jsonl`` from the artifact store (credentials from the pod's
Secrets), runs vLLM's OpenAI batch runner on it with prefix caching (the image pins vLLM:
the trainer image's lock, ``docker/trainer-constraints.txt``) and writes ``results.jsonl``
back next to it (:mod:`.batch`). The model is ``[compose] batch_model`` (default ``model``).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

from mspa_tasks.artifacts import open_store
from mspa_tasks.compose.batch import batch_prefix
from mspa_tasks.config import load_settings

log = logging.getLogger(__name__)


def vllm_command(model: str, requests: Path, results: Path) -> list[str]:
    """The batch runner's command line.

    >>> vllm_command("Qwen/Qwen2.5-7B-Instruct", Path("/tmp/in.jsonl"), Path("/tmp/out.jsonl"))[3:]
    ['-i', '/tmp/in.jsonl', '-o', '/tmp/out.jsonl', '--model', 'Qwen/Qwen2.5-7B-Instruct', '--enable-prefix-caching', '--dtype', 'bfloat16']
    """
    return [sys.executable, "-m", "vllm.entrypoints.openai.run_batch", "-i", str(requests),
            "-o", str(results), "--model", model, "--enable-prefix-caching", "--dtype",
            "bfloat16"]


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ds", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    store = open_store(settings.artifacts_uri)
    prefix = batch_prefix(args.ds)
    model = settings.compose.batch_model or settings.compose.model
    with tempfile.TemporaryDirectory(prefix="mspa-batch-") as tmp:
        requests, results = Path(tmp) / "requests.jsonl", Path(tmp) / "results.jsonl"
        requests.write_bytes(store.get_bytes(f"{prefix}/requests.jsonl"))
        command = vllm_command(model, requests, results)
        log.info("running %s", " ".join(command))
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            log.error("vLLM's batch runner exited with %d", done.returncode)
            return done.returncode
        store.put_bytes(f"{prefix}/results.jsonl", results.read_bytes())
    log.info("wrote %s", store.uri(f"{prefix}/results.jsonl"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
