"""Author content from the warehouse, as the composer and the alignment examples read it:
the day's profile (``sql/ingest/_author_profiles.sql``), frame captions and ASR, comments, and
frame URIs, all known before the window's end."""

from __future__ import annotations

from collections import defaultdict

from mspa_tasks.llm.prompting import AuthorContent
from mspa_tasks.warehouse import fetch_arrow, make_engine, require_tables

MAX_CAPTIONS, MAX_SPEECH, MAX_COMMENTS = 2, 2, 3


def load_author_content(warehouse_url: str, author_ids: set[int], end_ms: int,
                        ) -> tuple[dict[int, AuthorContent], dict[int, list[str]]]:
    """Content of ``author_ids`` known before ``end_ms``, and their frame URIs, newest first.
    Each author's profile is the day's (``sql/ingest/_author_profiles.sql``): the very row
    ingest kept."""
    engine = make_engine(warehouse_url)
    with engine.connect() as conn:
        require_tables(conn, ("authors", "author_media", "live_comments"))
        profiles = fetch_arrow(conn, "compose/select_author_profiles.sql",
                               {"end_ms": end_ms}).to_pylist()
        media = fetch_arrow(conn, "compose/select_author_media.sql", {"end_ms": end_ms}).to_pylist()
        comments = fetch_arrow(conn, "compose/select_author_comments.sql",
                               {"end_ms": end_ms}).to_pylist()
    engine.dispose()
    captions: dict[int, list[str]] = defaultdict(list)
    speech: dict[int, list[str]] = defaultdict(list)
    frames: dict[int, list[str]] = defaultdict(list)
    said: dict[int, list[str]] = defaultdict(list)
    for m in media:
        a = m["author_id"]
        if a not in author_ids:
            continue
        if m["frame_caption"] and len(captions[a]) < MAX_CAPTIONS:
            captions[a].append(m["frame_caption"])
        if m["asr_text"] and len(speech[a]) < MAX_SPEECH:
            speech[a].append(m["asr_text"])
        if m["frame_uri"]:
            frames[a].append(m["frame_uri"])
    for c in comments:
        if c["author_id"] in author_ids and c["text"] and len(said[c["author_id"]]) < MAX_COMMENTS:
            said[c["author_id"]].append(c["text"])
    content: dict[int, AuthorContent] = {}
    for p in profiles:
        a = p["author_id"]
        if a in author_ids:  # one row per author: the day's profile
            content[a] = AuthorContent(a, p["nickname"], p["location"], p["category"],
                                       p["intro"], tuple(captions[a]), tuple(speech[a]),
                                       tuple(said[a]))
    return content, dict(frames)
