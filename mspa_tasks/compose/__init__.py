"""MSPA's Multimodal Preference Composer: preference texts per user, feature texts per author.

* :mod:`.prompting` — versioned prompts, fenced untrusted content, fair context budgets;
* :mod:`.content` — the author content a prompt shows (profiles, frames, ASR, comments);
* :mod:`.backends` — batched generation behind one interface (text LLM, vision-language,
  keywords) and which model writes;
* :mod:`.generate` — every section of every input, validated, failing ones re-tried;
* :mod:`.validate` — output checks (sections, length, language, grounding);
* :mod:`.shards` — one shard of a day: inputs, the content-keyed cache, staging;
* :mod:`.outputs` — the day's published datasets, warehouse tables and sample;
* :mod:`.evaluate` — how much of a user's taste a text carries (benchmarks).

The names below are the stage's API (what the DAG and other stages call).
"""

from mspa_tasks.compose.generate import Composed, compose_texts
from mspa_tasks.compose.outputs import ShardsMissing, publish_texts
from mspa_tasks.compose.shards import (
                                       KINDS,
                                       compose_shard,
                                       load_cache,
                                       plan_shards,
                                       shard_of,
                                       tipped_authors,
)
from mspa_tasks.llm.content import load_author_content

__all__ = ["KINDS", "Composed", "ShardsMissing", "compose_shard", "compose_texts",
           "load_author_content", "load_cache", "plan_shards", "publish_texts", "shard_of",
           "tipped_authors"]
