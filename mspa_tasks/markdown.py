"""Markdown for humans from untrusted values: every value escaped so that it shows as text
(never a link, an image or HTML), texts in code fences they cannot close, and a Jinja2
environment whose output is escaped for Markdown by default.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

# Characters that make Markdown do something (links, images, emphasis, headings, tables).
_MD_ACTIVE = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
# Bidi overrides and isolates reorder what a reader sees; other controls break lines.
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\x00-\x09\x0b-\x1f\x7f]")


def md_text(value: object) -> str:
    r"""An untrusted field as inert Markdown inline text: line breaks, control and bidi
    characters become spaces, HTML is escaped, Markdown punctuation is backslash-escaped.
    Rendered, it shows the value as written and nothing else (no tag, link, image, emphasis).

    >>> print(md_text("<img src=x onerror=alert(1)> [go](javascript:alert(1))"))
    &lt;img src=x onerror=alert\(1\)&gt; \[go\]\(javascript:alert\(1\)\)
    >>> md_text(None), md_text("Chengdu\u202e, Sichuan\n# h")
    ('', 'Chengdu , Sichuan \\# h')
    """
    text = _INVISIBLE.sub(" ", "" if value is None else str(value)).replace("\n", " ")
    return _MD_ACTIVE.sub(r"\\\1", html.escape(text, quote=True))


def md_code_block(text: str) -> str:
    r"""``text`` as a fenced code block that no run of backticks inside it can close (a code
    block shows HTML and Markdown as written).

    >>> md_code_block("a ``` b")
    '````\na ``` b\n````'
    """
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{_INVISIBLE.sub(' ', text)}\n{fence}"


class _Verbatim(str):
    """Markdown that a template filter built on purpose (a code block): printed as is."""


def markdown_env(folder: Path):
    """A Jinja environment for Markdown reports whose every printed value is escaped by
    :func:`md_text` unless a filter built it (``code_block``): the Markdown counterpart of
    HTML autoescaping."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        finalize=lambda v: v if isinstance(v, _Verbatim) else md_text(v))
    env.filters["code_block"] = lambda text: _Verbatim(md_code_block(text or ""))
    return env
