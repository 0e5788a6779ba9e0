"""``mspa``: the command line over the library (also ``python -m mspa_tasks``).

Commands:
  seed-world      write the demo world into the local warehouse and artifact store
  ingest          run the ingest steps for one ds without Airflow
  show-manifest   print a published partition's manifest as a readable summary
  prepare-models  convert the packaged models once into the models cache folder
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

from mspa_tasks.artifacts import open_store
from mspa_tasks.config import load_settings


def _settings(args: argparse.Namespace):
    return load_settings(args.env)


def cmd_seed_world(args: argparse.Namespace) -> int:
    from mspa_tasks.world.generate import PRESETS, generate_world

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


def cmd_ingest(args: argparse.Namespace) -> int:
    from mspa_tasks.ingest import run_ingest

    settings = _settings(args)
    published = run_ingest(args.ds, settings.warehouse_url, open_store(settings.artifacts_uri),
                           settings)
    print(published.manifest_uri)
    return 0


def cmd_show_manifest(args: argparse.Namespace) -> int:
    from mspa_tasks.publish import read_manifest
    from mspa_tasks.report import manifest_summary, texts_summary

    settings = _settings(args)
    store = open_store(settings.artifacts_uri)
    manifest = read_manifest(store, args.dataset, args.ds)
    if args.dataset == "sessions":
        print(manifest_summary(manifest, store, settings))
    else:
        print(texts_summary(manifest, store))
    return 0


def cmd_prepare_models(args: argparse.Namespace) -> int:
    from mspa_tasks.models import prepare_packaged_models

    settings = _settings(args)
    for name, path in prepare_packaged_models(settings.models_dir).items():
        print(f"{name}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mspa", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=None, help="local or prod (default: $MSPA_ENV or local)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("seed-world", help="write the demo world")
    p.add_argument("--preset", default="demo", help="tiny, demo or scale")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--end-ds", default=None)
    p.set_defaults(func=cmd_seed_world)
    p = sub.add_parser("ingest", help="ingest one ds without Airflow")
    p.add_argument("--ds", required=True)
    p.set_defaults(func=cmd_ingest)
    p = sub.add_parser("show-manifest", help="summarise a published partition")
    p.add_argument("--ds", required=True)
    p.add_argument("--dataset", default="sessions")
    p.set_defaults(func=cmd_show_manifest)
    p = sub.add_parser("prepare-models", help="convert packaged models into the cache")
    p.set_defaults(func=cmd_prepare_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
