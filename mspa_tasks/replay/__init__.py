"""Offline replay of day ``ds``: MSPA against its baselines on the day's real requests.

Three independent parts, each written to ``reports/replay/ds=<ds>/parts/<part>.json``
(:mod:`.parts`), then merged into one report:

* :mod:`.offline` — AUC/UAUC on the day's impressions, HR@K on its requests, Recall/NDCG@K
  on test users, A2A alignment on author triples from the optional ``world_truth``;
* :mod:`.u2a` — Acc@m of the champion recommender model on test users' examples, and the
  baselines' pick among the same candidates;
* :mod:`.ann` — sampled requests through the published Milvus alias against exact search.

:mod:`.data` reads the day (vectors, sessions, impressions) and builds the scorers
(:mod:`mspa_tasks.scoring.baselines`: popularity, ALS); :mod:`mspa_tasks.scoring.metrics`
holds the metric functions;
:mod:`.results` records and publishes the report, which :mod:`.render` shows as text and
HTML. The names below are the stage's API.
"""

from mspa_tasks.replay.ann import replay_ann
from mspa_tasks.replay.offline import replay_offline
from mspa_tasks.replay.parts import MODELS, MSPA, PARTS, row, write_part
from mspa_tasks.replay.render import segments_markdown, summary_text
from mspa_tasks.replay.results import (
                                       REPORT_HTML,
                                       REPORT_JSON,
                                       ReportIncomplete,
                                       history,
                                       list_reports,
                                       publish_report,
                                       read_report,
                                       record_metrics,
                                       report_prefix,
)
from mspa_tasks.replay.u2a import replay_u2a

__all__ = ["MODELS", "MSPA", "PARTS", "REPORT_HTML", "REPORT_JSON",
           "ReportIncomplete", "history", "list_reports", "publish_report", "read_report",
           "record_metrics", "replay_ann", "replay_offline", "replay_u2a", "report_prefix",
           "row", "segments_markdown", "summary_text", "write_part"]
