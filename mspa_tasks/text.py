"""What counts as blank text: one definition for Python and for SQL on every dialect.

A profile whose intro is only whitespace says nothing, whatever the whitespace: the ASCII
kinds, the no-break and full-width spaces (U+3000 is common in Chinese text), line and
paragraph separators, and the invisible zero-width characters. SQL gets the same set as a
bound parameter, ``TRIM(text, :blank_chars) = ''``, which SQLite and PostgreSQL both run.
"""

from __future__ import annotations

# Every character Python calls whitespace (str.isspace; tests/mspa_tasks/test_text.py keeps
# this list equal to it), plus the zero-width ones that render as nothing. NUL is left out:
# PostgreSQL refuses it in text, and it is removed where text is published.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003"
              "\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
BLANK_CHARS = WHITESPACE + "\u200b\u200c\u200d\u2060\ufeff"


def is_blank(text: str | None) -> bool:
    """Whether ``text`` is missing or only blank characters.

    >>> [is_blank(t) for t in (None, "", " \\n\\t", "\\u3000", "\\u200b", "a\\u3000")]
    [True, True, True, True, True, False]
    """
    return text is None or not text.strip(BLANK_CHARS)


def profile_text(row: dict) -> str:
    """The fallback text of an author whose feature text failed: its own profile.

    >>> profile_text({"category": "singing", "nickname": "Mia", "location": "Chengdu"})
    'singing streamer Mia in Chengdu'
    """
    who = f"{row.get('category') or 'unknown'} streamer {row.get('nickname') or ''}".strip()
    return who + (f" in {row['location']}" if row.get("location") else "")
