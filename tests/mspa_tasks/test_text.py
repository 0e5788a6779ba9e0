"""Blank text: the one definition shared by Python and SQL."""

from __future__ import annotations

import sys

from mspa_tasks.text import WHITESPACE


def test_the_whitespace_list_is_exactly_what_python_calls_whitespace():
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert WHITESPACE == every
