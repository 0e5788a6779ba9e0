"""One-paragraph summaries of published partitions (printed by ``make demo`` and the CLI).
"""

from __future__ import annotations

from typing import Any

from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.config import Settings
from mspa_tasks.publish import partition_prefix


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
