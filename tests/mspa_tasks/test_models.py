"""The packaged models load offline from the cache that `make` prepared, and really run."""

from __future__ import annotations

import pytest

from mspa_tasks.models import convert_smollm2, minilm_path, smollm2_gguf_path
from tests.conftest import DEV_MODELS_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2_dir():
    # Reuse the cache `make models` filled (it is keyed by content, so never stale).
    return convert_smollm2(DEV_MODELS_DIR)


def test_cache_folder_is_keyed_by_the_gguf_content(smollm2_dir):
    import hashlib

    digest = hashlib.sha256(smollm2_gguf_path().read_bytes()).hexdigest()[:12]
    assert smollm2_dir.name.endswith(digest)
    assert convert_smollm2(smollm2_dir.parent) == smollm2_dir  # second call reuses it


def test_a_new_home_links_the_machine_cache_instead_of_converting(smollm2_dir, tmp_path,
                                                                 monkeypatch, caplog):
    monkeypatch.setenv("MSPA_MODELS_CACHE", str(smollm2_dir.parent))
    caplog.set_level("INFO", logger="mspa_tasks.models")
    linked = convert_smollm2(tmp_path / "home" / "models")
    assert linked.is_symlink() and linked.resolve() == smollm2_dir.resolve()
    assert linked.name == smollm2_dir.name and (linked / "model.safetensors").is_file()
    assert "converting" not in caplog.text and "linked from MSPA_MODELS_CACHE" in caplog.text
    assert convert_smollm2(tmp_path / "home" / "models") == linked  # then reused as is


def test_converted_smollm2_follows_a_chat_template(smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir).eval()
    prompt = tok.apply_chat_template([{"role": "user", "content": "Name a colour."}],
                                     tokenize=False, add_generation_prompt=True)
    enc = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=12, do_sample=False)
    text = tok.decode(out[0, enc.input_ids.shape[1]:], skip_special_tokens=True)
    assert len(text.strip()) > 0 and any(c.isalpha() for c in text)


def test_minilm_encodes_offline():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_path()), device="cpu")
    vectors = model.encode(["cozy singing stream", "relaxed ballads at night", "ranked shooter"],
                           normalize_embeddings=True)
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
