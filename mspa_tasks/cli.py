"""``mspa``: the command line over the library (also ``python -m mspa_tasks``).

Commands:
  seed-world      write the demo world into the local warehouse and artifact store
  world-stats     generate presets into a scratch folder and print their calibration table
                  against KuaiLive's figures (docs/world.md)
  import-kuailive load the public KuaiLive CSVs (a folder) into the warehouse's source tables
  ingest          run the ingest steps for one ds without Airflow
  show-manifest   print a published partition's manifest as a readable summary
  prepare-models  convert the packaged models once into the models cache folder
  vectors         encode / build / validate / publish / refresh / list / rollback the
                  author vectors in Milvus (local: the milvus-lite file; elsewhere --uri and
                  the token in $MILVUS_TOKEN)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from urllib.parse import quote

from mspa_tasks import registry, vector_store
from mspa_tasks import replay as report
from mspa_tasks.artifacts import (
    ArtifactNotFound,
    StoreUnavailable,
    StoreURIError,
    file_uri,
    open_store,
)
from mspa_tasks.config import CONF_DIR, ConfigError, explain_settings, load_settings
from mspa_tasks.datasets import InputsMissing, UnknownDataset, dataset
from mspa_tasks.days import InvalidPartition, window_for
from mspa_tasks.ingest import NotStaged, run_ingest
from mspa_tasks.kuailive import KuaiLiveFormatError, import_kuailive
from mspa_tasks.models import prepare_packaged_models
from mspa_tasks.publish import ChecksumMismatch, EmptyInput, read_manifest
from mspa_tasks.quality import GateError
from mspa_tasks.replay.results import ReportUnreadable
from mspa_tasks.run import DayRun
from mspa_tasks.summaries import manifest_summary, texts_summary, vectors_summary
from mspa_tasks.vector_store import MilvusUnavailable, PublishRefused
from mspa_tasks.vectors.alignment import align_encoder
from mspa_tasks.vectors.build import build_collection
from mspa_tasks.vectors.encode import encode_day
from mspa_tasks.vectors.gate import VectorGateError, validate_collection
from mspa_tasks.vectors.lifecycle import list_versions, publish_collection, rollback
from mspa_tasks.warehouse import MissingSourceTable, WarehouseURLError
from mspa_tasks.world.calibration import markdown, measure
from mspa_tasks.world.generate import PRESETS, generate_world


def _settings(args: argparse.Namespace):
    return load_settings(args.env)


def cmd_seed_world(args: argparse.Namespace) -> int:

    settings = _settings(args)
    if args.preset not in PRESETS:
        print(f"unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}", file=sys.stderr)
        return 2
    spec = PRESETS[args.preset]
    changes = {k: v for k, v in (("seed", args.seed), ("end_ds", args.end_ds)) if v is not None}
    spec = dataclasses.replace(spec, **changes) if changes else spec
    summary = generate_world(spec, settings.warehouse_url, open_store(settings.artifacts_uri))
    print(json.dumps({"rows": summary.rows, "expected_quarantine": summary.expected_quarantine,
                      "seconds": summary.seconds, "warehouse": settings.warehouse_url,
                      "artifacts": settings.artifacts_uri}, indent=2))
    return 0


def cmd_world_stats(args: argparse.Namespace) -> int:
    import tempfile


    unknown = [p for p in args.preset or [] if p not in PRESETS]
    if unknown:
        print(f"unknown preset(s) {unknown}; choose from {', '.join(PRESETS)}", file=sys.stderr)
        return 2
    measured = {}
    args.preset = args.preset or ["demo", "default"]
    for name in args.preset:
        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite:///{quote(str(scratch))}/world.db"
            generate_world(PRESETS[name], url, open_store(file_uri(f"{scratch}/artifacts")))
            measured[name] = measure(url, PRESETS[name])
    print(markdown(measured), end="")
    return 0


def cmd_import_kuailive(args: argparse.Namespace) -> int:

    url = args.warehouse or _settings(args).warehouse_url
    summary = import_kuailive(args.folder, url, force=args.force,
                              max_reject_share=args.max_reject_share)
    print(json.dumps(dataclasses.asdict(summary), indent=2))
    if summary.days:
        print(f"\nnext: MSPA_CONFIG={CONF_DIR / 'sources' / 'kuailive.toml'} airflow dags test "
              f"mspa_daily {summary.days[1]}   (every run on this warehouse names that file; "
              "rejected lines are in the warehouse table import_rejects)")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    published = run_ingest(DayRun.open(args.ds, _settings(args)))
    print(published.manifest_uri)
    return 0


def cmd_show_manifest(args: argparse.Namespace) -> int:

    dataset(args.dataset)  # a name the catalog knows, never a path
    settings = _settings(args)
    store = open_store(settings.artifacts_uri)
    manifest = read_manifest(store, args.dataset, args.ds)
    if args.dataset == "sessions":
        print(manifest_summary(manifest, store, settings))
    elif args.dataset in ("author_vectors", "user_vectors"):

        versions = list_versions(vector_store.MilvusTarget(settings.vectors.milvus_uri),
                                        settings) if settings.vectors.milvus_uri else []
        print(vectors_summary(manifest, store, versions, settings.vectors.alias))
    else:
        print(texts_summary(manifest, store))
    return 0


def cmd_prepare_models(args: argparse.Namespace) -> int:

    settings = _settings(args)
    for name, path in prepare_packaged_models(settings.models_dir).items():
        print(f"{name}: {path}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """Every setting in effect (the environment's file, $MSPA_CONFIG over it, the defaults
    for the rest), as JSON: what a run of this environment would use."""
    settings = _settings(args)
    if args.explain is not None:
        try:
            print(explain_settings(settings, args.explain or None))
        except KeyError as exc:
            print(exc.args[0], file=sys.stderr)
            return 2
        return 0
    print(json.dumps({"fingerprint": settings.fingerprint(),
                      **settings.model_dump(mode="json")}, indent=2))
    return 0


def cmd_vectors(args: argparse.Namespace) -> int:

    settings = _settings(args)
    if args.insert_batch:
        settings = settings.replaced(vectors={"insert_batch": args.insert_batch})
    uri = args.uri or settings.vectors.milvus_uri
    if not uri:
        print("no Milvus URI: pass --uri (and the token in $MILVUS_TOKEN)", file=sys.stderr)
        return 2
    target = vector_store.MilvusTarget(uri, os.environ.get("MILVUS_TOKEN", ""), args.db_name)
    needs_ds = {"align", "encode", "build", "validate", "publish", "refresh"}
    if args.action in needs_ds and not args.ds:
        print(f"vectors {args.action} needs --ds", file=sys.stderr)
        return 2
    run = DayRun.open(args.ds, settings, milvus=target) if args.ds else None
    out: object
    try:
        if args.action == "align":
            out = align_encoder(run)
        elif args.action == "encode":
            out = encode_day(run).counts
        elif args.action == "build":
            out = build_collection(run).collection
        elif args.action in ("validate", "publish") and not args.collection:
            print(f"vectors {args.action} needs --collection", file=sys.stderr)
            return 2
        elif args.action == "validate":
            out = [c.message for c in validate_collection(run, args.collection)]
        elif args.action == "publish":
            out = publish_collection(run, args.collection)
        elif args.action == "refresh":
            name = build_collection(run).collection
            validate_collection(run, name)
            out = publish_collection(run, name)
        elif args.action == "list":
            out = list_versions(target, settings)
        else:
            out = rollback(target, settings, to=args.to, reason=args.reason)
    except (VectorGateError, PublishRefused) as exc:
        print(f"mspa: error: {one_line(exc)}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2, default=str))
    return 0


def cmd_models(args: argparse.Namespace) -> int:

    settings = _settings(args)
    url = settings.warehouse_url
    table = registry.ENCODER_REGISTRY if args.encoder else registry.MODEL_REGISTRY
    if args.action == "list":
        out = [{"version": m.version, "status": m.status, "ds": m.ds, "reason": m.reason,
                "figures": {k: v for k, v in m.metrics.get("new", {}).items()
                            if k.startswith(("acc@", "hr@", "uauc"))}}
               for m in registry.list_models(url, table)]
    else:
        if not args.version:
            print("models promote needs a VERSION (see `mspa models list`)", file=sys.stderr)
            return 2
        try:
            out = registry.promote(url, args.version, args.reason, table).version
        except KeyError as exc:
            print(exc.args[0], file=sys.stderr)
            return 1
    print(json.dumps(out, indent=2, default=str))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:

    settings = _settings(args)
    store = open_store(settings.artifacts_uri)
    if args.action == "list":
        print("\n".join(report.list_reports(store, settings)) or "no replay report yet")
        return 0
    days = report.list_reports(store, settings)
    ds = args.ds or (days[0] if days else None)
    try:
        if ds is None:
            raise ArtifactNotFound("no replay report yet")
        body = report.read_report(store, settings, ds)
    except ArtifactNotFound:
        print(f"no replay report for {ds or 'any day'}; run the replay task group of "
              "mspa_daily (make replay)", file=sys.stderr)
        return 1
    print(f"replay {ds} (previous {body.get('previous_ds') or 'none'}), champion "
          f"{body.get('champion')}, scored with the artifacts of {body.get('model_day')}\n"
          f"{report.summary_text(body)}\n"
          f"html   {store.uri(report.report_prefix(settings, ds) + '/' + report.REPORT_HTML)}")
    if args.segments:
        print("\n" + report.segments_markdown(body))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mspa", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=None, help="local or prod (default: $MSPA_ENV or local)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("seed-world", help="write the demo world")
    p.add_argument("--preset", default="demo", help="tiny, e2e, demo, default, scale or scale-dag")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--end-ds", default=None)
    p.set_defaults(func=cmd_seed_world)
    p = sub.add_parser("world-stats", help="a preset's calibration against KuaiLive")
    p.add_argument("--preset", action="append", default=None,
                   help="repeatable (default: demo and default)")
    p.set_defaults(func=cmd_world_stats)
    p = sub.add_parser("import-kuailive", help="load the KuaiLive CSVs into the warehouse")
    p.add_argument("folder", help="the unzipped archive: user.csv, streamer.csv, room.csv, ...")
    p.add_argument("--max-reject-share", type=float, default=0.1, metavar="SHARE",
                   help="fail (nothing written) when more than this share of a file's lines "
                        "is rejected (default 0.1)")
    p.add_argument("--force", action="store_true",
                   help="import even when a file is mostly rejected or a table would be "
                        "emptied")
    p.add_argument("--warehouse", default=None,
                   help="SQLAlchemy URL (default: the environment's warehouse)")
    p.set_defaults(func=cmd_import_kuailive)
    p = sub.add_parser("ingest", help="ingest one ds without Airflow")
    p.add_argument("--ds", required=True)
    p.set_defaults(func=cmd_ingest)
    p = sub.add_parser("show-manifest", help="summarise a published partition")
    p.add_argument("--ds", required=True)
    p.add_argument("--dataset", default="sessions")
    p.set_defaults(func=cmd_show_manifest)
    p = sub.add_parser("prepare-models", help="convert packaged models into the cache")
    p.set_defaults(func=cmd_prepare_models)
    p = sub.add_parser("config", help="print every setting in effect (defaults included)")
    p.add_argument("--explain", nargs="?", const="", default=None, metavar="SECTION",
                   help="as TOML, each setting with what it means (one section: align, "
                        "align.grpo, ...)")
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("vectors", help="the author-vector refresh in Milvus, step by step")
    p.add_argument("action", choices=["align", "encode", "build", "validate", "publish",
                                      "refresh", "list", "rollback"])
    p.add_argument("--ds", default=None)
    p.add_argument("--collection", default=None, help="for validate / publish")
    p.add_argument("--to", default=None, help="rollback target (default: previous version)")
    p.add_argument("--reason", default="rollback from the command line")
    p.add_argument("--uri", default=None, help="Milvus URI (default: the local lite file)")
    p.add_argument("--db-name", default="")
    p.add_argument("--insert-batch", type=int, default=None, help="rows per insert call")
    p.set_defaults(func=cmd_vectors)
    p = sub.add_parser("models", help="the model registries: list, promote by hand")
    p.add_argument("action", choices=["list", "promote"])
    p.add_argument("version", nargs="?", default=None)
    p.add_argument("--encoder", action="store_true",
                   help="the encoder registry (aligned encoders) instead of the recommender's")
    p.add_argument("--reason", default="promoted from the command line")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("replay", help="the replay reports: list them, show one as a table")
    p.add_argument("action", choices=["list", "show"])
    p.add_argument("--ds", default=None, help="for show (default: the newest report)")
    p.add_argument("--segments", action="store_true",
                   help="for show: also the per-segment table (Markdown, 95%% intervals)")
    p.set_defaults(func=cmd_replay)
    return parser


def expected_errors() -> tuple[type[BaseException], ...]:
    """What a user can cause or fix (bad input, a missing day, a gate breach, a held lite
    file): reported as one line, never as a traceback. Anything else is a bug and keeps its
    traceback."""

    return (ConfigError, InvalidPartition, NotStaged, ArtifactNotFound, ChecksumMismatch,
            EmptyInput, GateError, InputsMissing, MilvusUnavailable, PublishRefused,
            MissingSourceTable, KuaiLiveFormatError, StoreURIError, StoreUnavailable,
            UnknownDataset, ReportUnreadable, WarehouseURLError)


def one_line(exc: BaseException) -> str:
    r"""The error as one line: a gate's check list joined with '; '.

    >>> one_line(RuntimeError("gate stopped: 2 failed\n  - a FAILED\n  - b FAILED"))
    'gate stopped: 2 failed; a FAILED; b FAILED'
    """

    if isinstance(exc, ArtifactNotFound):
        return f"{exc.args[0] if exc.args else exc} does not exist (is that day published?)"
    parts = [p.strip().removeprefix("- ") for p in str(exc).splitlines() if p.strip()]
    return "; ".join(parts) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pymilvus", "grpc", "faiss"):  # their INFO lines drown ours
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # milvus-lite logs a traceback of its own when a file is held; MilvusUnavailable says it.
    logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)
    args = build_parser().parse_args(argv)
    try:

        for name in ("ds", "end_ds"):  # a bad day is refused before anything runs
            if getattr(args, name, None):
                window_for(getattr(args, name), 1)
        return args.func(args)
    except expected_errors() as exc:
        print(f"mspa: error: {one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
