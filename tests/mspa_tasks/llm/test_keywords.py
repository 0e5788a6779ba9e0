"""The model-free keyword composer: section-aware, tip-weighted, grounded, deterministic."""

from __future__ import annotations

from mspa_tasks.compose.generate import compose_texts
from mspa_tasks.llm.engine import load_backend
from mspa_tasks.llm.keywords import KeywordBackend
from mspa_tasks.llm.prompting import AuthorContent, load_prompt, render_author, render_user
from mspa_tasks.llm.validate import has_structure

CONTENT = {
    1: AuthorContent(1, "Xiao", "Chengdu, Sichuan", "singing",
                     "Sings ballads from my bedroom studio. Calm and cozy.",
                     ("warm soft light shot of a bedroom studio",), ("welcome friends",),
                     ("so relaxing", "lovely ballads")),
    2: AuthorContent(2, "Hao", "Shanghai, Shanghai", "gaming",
                     "Plays ranked matches at a gaming desk. High energy.",
                     ("neon gaming desk",), (), ("insane clutch",)),
    3: AuthorContent(3, "Ana", "Chengdu, Sichuan", "singing", None, (), (), ()),
}


def test_user_sections_read_their_fields_weighted_by_tips():
    spec = load_prompt("preference_v1")
    user = render_user(7, [(1, 3), (2, 1), (3, 1)], CONTENT, 900, 150, "keywords-v1",
                       spec.version)
    texts = compose_texts([user], spec, KeywordBackend(), retries=0)
    text = texts[7].text
    assert texts[7].status == "ok", texts[7].reason
    assert has_structure(text, [s.name for s in spec.sections])
    lines = dict(line.split(": ", 1) for line in text.splitlines())
    # singing: 3 tips (Xiao) + 1 (Ana) beats gaming's 1; the place likewise
    assert lines["Favoured author types"].startswith("singing, ")
    assert lines["Regional bias"] == "Chengdu, Sichuan, Shanghai, Shanghai"
    assert lines["Environment and scene"].split(", ")[:2] == ["warm", "soft"]
    assert "relaxing" in lines["Atmosphere and style"]
    assert "gaming" not in lines["Atmosphere and style"]


def test_author_text_and_empty_profile():
    spec = load_prompt("author_v1")
    backend = load_backend("keywords", None)
    full = render_author(CONTENT[2], 600, backend.model_version, spec.version)
    bare = render_author(AuthorContent(9, None, None, None, None), 600, "keywords-v1",
                         spec.version)
    texts = compose_texts([full, bare], spec, backend, retries=1)
    assert texts[2].status == "ok"
    assert texts[2].text.splitlines()[0] == "Author type: gaming"
    # nothing to extract: stored as failed with the reason, never invented
    assert texts[9].status == "failed" and "empty" in texts[9].reason
    assert texts[9].attempts == 2


def test_a_section_whose_fields_were_cut_reads_the_next_tier():
    spec = load_prompt("preference_v1")
    # a 100-character budget per author keeps the who and part of the intro only
    user = render_user(7, [(1, 1), (2, 1)], CONTENT, 200, 100, "keywords-v1", spec.version)
    assert "frames:" not in user.data
    texts = compose_texts([user], spec, KeywordBackend(), retries=0)
    assert texts[7].status == "ok", texts[7].reason
    lines = dict(line.split(": ", 1) for line in texts[7].text.splitlines())
    assert lines["Environment and scene"] == "sings, ballads, bedroom"


def test_same_input_same_answer():
    spec = load_prompt("preference_v1")
    user = render_user(7, [(2, 1), (1, 1)], CONTENT, 900, 150, "keywords-v1", spec.version)
    first = compose_texts([user], spec, KeywordBackend(), retries=0)[7].text
    assert compose_texts([user], spec, KeywordBackend(), retries=0)[7].text == first
