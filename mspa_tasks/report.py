"""Human-readable summaries of published partitions (printed by ``make demo`` and the CLI)."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.config import Settings
from mspa_tasks.publish import partition_prefix

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


def _reasons(counts: dict[str, int]) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{reason} {n:,}" for reason, n in sorted(counts.items()))


def manifest_summary(manifest: dict[str, Any], store: ArtifactStore, settings: Settings) -> str:
    """A short text report of a sessions manifest: counts by reason and where outputs are."""
    c = manifest["counts"]
    ev, users, authors = c["events"], c["users"], c["authors"]
    prefix = partition_prefix(manifest["dataset"], manifest["ds"])
    lines = [
        f"ds {manifest['ds']}  window {manifest['window']['start']} .. {manifest['window']['end']}"
        f" ({manifest['window']['days']} days)",
        f"events   candidates {ev['candidates']:,}  kept {ev['kept']:,}",
        f"         quarantined: {_reasons(ev['quarantined'])}",
        f"         filtered (valid rows of dropped users/authors): {_reasons(ev['filtered'])}",
        f"users    kept {users['kept']:,}  dropped: {_reasons(users['dropped'])}",
        f"authors  kept {authors['kept']:,}  dropped/quarantined: {_reasons(authors['dropped'])}",
        f"split    {_reasons(c['split'])}",
        "checks   " + "; ".join(
            f"{q['name']}={'n/a' if q['value'] is None else format(q['value'], '.4g')}"
            f"{'' if q['passed'] else ' FAILED'}" for q in manifest["quality_checks"]),
        f"code     {manifest['code_version']}  config {manifest['config_version']}",
        "outputs",
        f"  manifest     {store.uri(prefix + '/manifest.json')}",
    ]
    for name, entry in sorted(manifest["files"].items()):
        lines.append(f"  {name:<12} {store.uri(prefix + '/' + entry['file'])}  "
                     f"({entry['rows']:,} rows, sha256 {entry['sha256'][:12]})")
    lines += [
        f"  warehouse    {settings.warehouse_url or settings.warehouse_conn_id} "
        "(tables quarantine_tip_events, quarantine_authors, dropped_users, dq_results)",
        f"  world        {store.uri('world/')}",
    ]
    return "\n".join(lines)


def texts_summary(manifest: dict[str, Any], store: ArtifactStore) -> str:
    """A short text report of a composer manifest (preference_texts or author_texts)."""
    c = manifest["counts"]
    prefix = partition_prefix(manifest["dataset"], manifest["ds"])
    lines = [
        f"{manifest['dataset']}  ds {manifest['ds']}  model {', '.join(manifest['model_version'])}"
        f"  prompt {', '.join(manifest['prompt_version'])}  frames as {manifest['frames_as']}",
        f"  texts {c['total']:,}: ok {c['ok']:,}, failed {c['failed']:,} "
        f"(sections by check: {_reasons(c['failed_sections_by_check'])}); "
        f"reused {c['reused']:,}, regenerated {c['regenerated']:,}; "
        f"tokens in/out {c['tokens_in']:,}/{c['tokens_out']:,}",
        f"  inputs cut by the context budget: {c['inputs_with_truncated_authors']:,} truncated, "
        f"{c['inputs_with_omitted_authors']:,} with authors omitted",
        f"  manifest {store.uri(prefix + '/manifest.json')}",
    ]
    if manifest.get("sample_report"):
        lines.append(f"  sample   {manifest['sample_report']}")
    return "\n".join(lines)


def vectors_summary(manifest: dict[str, Any], store: ArtifactStore,
                    versions: list[dict[str, Any]] | None = None, alias: str = "") -> str:
    """A short text report of an ``author_vectors`` manifest and the Milvus versions."""
    c = manifest["counts"]
    prefix = partition_prefix(manifest["dataset"], manifest["ds"])
    lines = [f"{manifest['dataset']}  ds {manifest['ds']}  encoder {manifest['encoder_version']}"
             f"  dim {manifest['dim']}",
             "  " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in c.items()),
             f"  manifest {store.uri(prefix + '/manifest.json')}"]
    for v in versions or []:
        mark = f"<- {alias}" if v["serving"] else ""
        lines.append(f"  milvus {v['collection']}  {v['status']}  recall {v['recall']}  {mark}")
    return "\n".join(lines)
