"""Markdown for humans from untrusted values (mspa_tasks.markdown): rendered by a CommonMark
renderer, a hostile value shows as its text and nothing else."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from mspa_tasks.markdown import markdown_env, md_code_block, md_text

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "![i](http://evil/x.png)",
    "# heading\n- item",
    "**bold** _em_ `code`",
    "a | b | c",
    "Chengdu\u202e, Sichuan",
    "<https://evil.example>",
]
TAGS = re.compile(r"<(?!/?p>)[a-z/][^>]*>")


@pytest.mark.parametrize("value", HOSTILE)
def test_an_untrusted_value_renders_as_plain_text(value):
    html = MarkdownIt("commonmark").enable("table").render(md_text(value))
    assert TAGS.findall(html) == [], html
    assert "\u202e" not in html


def test_no_run_of_backticks_can_close_the_code_block():
    text = "before ```` inside\n```\n<b>x</b>"
    html = MarkdownIt("commonmark").render(md_code_block(text))
    assert html.count("<pre>") == 1 and "&lt;b&gt;x&lt;/b&gt;" in html


def test_the_template_environment_escapes_every_printed_value(tmp_path):
    (tmp_path / "t.md.j2").write_text("Name: {{ name }}\n\n{{ body | code_block }}\n")
    out = markdown_env(tmp_path).get_template("t.md.j2").render(
        name="[x](javascript:1)", body="```\n<i>")
    html = MarkdownIt("commonmark").render(out)
    assert "<a " not in html and "&lt;i&gt;" in html and "<i>" not in html
