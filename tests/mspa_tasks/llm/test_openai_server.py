"""The OpenAI-compatible backend against a real local server: llama.cpp's
(``llama_cpp.server``, from ``llama-cpp-python[server]``) serving the packaged SmolLM2 GGUF.

Building llama.cpp takes minutes, so this module runs in its own target, ``make
test-openai`` (marker ``llamacpp``; it builds ``.venv-llama`` once), not in ``make test``.
Checked: the prompt is byte-for-byte the local backend's; greedy answers come back in the
requests' order; the composer validates them as today; and a server killed mid-batch is
restarted while the batch runs: the retries complete it, every request has exactly its own
answer (the clean run's), none is lost or duplicated.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mspa_tasks.compose.generate import compose_texts
from mspa_tasks.llm.hf import TextBackend
from mspa_tasks.llm.openai_backend import OpenAIBackend, ServerUnavailable
from mspa_tasks.llm.prompting import AuthorContent, load_prompt, render_user
from mspa_tasks.llm.requests import Request
from mspa_tasks.llm.validate import has_structure
from mspa_tasks.models import convert_smollm2, smollm2_gguf_path
from tests.conftest import DEV_MODELS_DIR, REPO

pytestmark = [pytest.mark.llamacpp, pytest.mark.slow]
SERVER_PYTHON = Path(os.environ.get("MSPA_LLAMA_PYTHON", REPO / ".venv-llama/bin/python"))


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``python -m llama_cpp.server`` on the packaged GGUF, startable and killable."""

    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log, self.proc = port, log, None

    def start(self) -> None:
        if not SERVER_PYTHON.is_file():
            pytest.fail(f"{SERVER_PYTHON} is missing: run `make test-openai` (it builds "
                        "llama-cpp-python[server] into .venv-llama)")
        self.proc = subprocess.Popen(
            [str(SERVER_PYTHON), "-m", "llama_cpp.server", "--model", str(smollm2_gguf_path()),
             "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(self.port),
             "--n_ctx", "2048", "--n_threads", "2", "--seed", "0"],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.2)
        pytest.fail("llama_cpp.server did not listen within 120 s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(_port(), tmp_path_factory.mktemp("llama") / "server.log")
    srv.start()
    yield srv
    srv.kill()


def _backend(server: Server, **kwargs) -> OpenAIBackend:
    return OpenAIBackend(str(convert_smollm2(DEV_MODELS_DIR)), f"http://127.0.0.1:{server.port}/v1",
                         "smollm2", "smollm2-test", **{"max_new_tokens": 12, **kwargs})


def _requests(n: int) -> list[Request]:
    spec = load_prompt("preference_v1")
    out = []
    for i in range(n):
        content = {1: AuthorContent(1, "Xiao", "Chengdu, Sichuan", "singing",
                                    f"Sings ballads, set {i}. Calm and cozy.", (), (), ()),
                   2: AuthorContent(2, "Hao", "Shanghai, Shanghai", "gaming",
                                    f"Plays ranked matches, round {i}.", (), (), ())}
        data = render_user(i, [(1, 2), (2, 1)], content, 900, 150, "m", spec.version).data
        section = spec.sections[i % len(spec.sections)]
        out.append(Request(spec.messages(data, section), prefill=f"{section.name}:"))
    return out


def test_the_same_prompt_greedy_answers_in_order_and_the_composer_validates_them(server):
    backend = _backend(server, concurrency=3)
    requests = _requests(6)
    local = TextBackend(convert_smollm2(DEV_MODELS_DIR), batch_size=2, max_new_tokens=12)
    assert [backend.prompt(r) for r in requests] == [local._prompt(r) for r in requests]
    first = backend.generate(requests)
    again = backend.generate(list(reversed(requests)))
    assert [g.text for g in first] == [g.text for g in reversed(again)]  # order kept, greedy
    assert all(g.tokens_in > 100 and 0 < g.tokens_out <= 12 for g in first)
    assert all("\n" not in g.text for g in first)

    spec = load_prompt("preference_v1")
    content = {1: AuthorContent(1, "Xiao", "Chengdu, Sichuan", "singing",
                                "Sings ballads from my bedroom studio. Calm and cozy.", (), (),
                                ("so relaxing",))}
    inputs = [render_user(u, [(1, 3)], content, 900, 150, "smollm2-test", spec.version)
              for u in (1, 2)]
    composed = compose_texts(inputs, spec, backend, retries=1, images=None, extractive=False)
    assert set(composed) == {1, 2}
    for c in composed.values():
        assert c.status in {"ok", "failed"} and c.attempts >= 1
        assert c.status == "failed" or has_structure(c.text, [s.name for s in spec.sections])


def test_a_server_killed_mid_batch_is_retried_to_completion_without_duplicates(server):
    requests = _requests(16)
    clean = [g.text for g in _backend(server, concurrency=4).generate(requests)]
    backend = _backend(server, concurrency=4, backoff_s=0.5, max_retries=8)
    out: dict[str, object] = {}
    worker = threading.Thread(target=lambda: out.setdefault("texts", backend.generate(requests)))
    worker.start()
    time.sleep(1.0)  # some requests answered, some in flight
    server.kill()
    time.sleep(1.0)  # refused connections meanwhile: retried with backoff
    server.start()
    worker.join(timeout=300)
    assert not worker.is_alive()
    assert backend.retried > 0  # the kill was felt
    assert [g.text for g in out["texts"]] == clean  # each request has its own answer, once


def test_a_server_that_stays_down_fails_with_the_reason(server, tmp_path):
    down = Server(_port(), tmp_path / "never.log")  # nothing listens on this port
    backend = _backend(down, max_retries=2, backoff_s=0.01)
    with pytest.raises(ServerUnavailable, match="after 3 attempts: ConnectError"):
        backend.generate(_requests(1))
