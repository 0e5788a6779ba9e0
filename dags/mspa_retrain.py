"""
### mspa_retrain — re-align the recommender LLM with GRPO, and promote it only if it is better

MSPA's self-corrective preference alignment, weekly (Sundays 04:00 UTC) or from the UI
(*Trigger DAG w/ config*). The model reads a user's tipping history and `m` candidate authors
and writes `User Preference`, `Recommendation Reason` and `Recommended author`; GRPO rewards
the right author (accuracy), the three phrases in order (format) and closeness of the picked
author to the right one (similarity), with weights λ1..λ3 and a KL penalty `beta` from config.

| task | what it does | on failure |
| --- | --- | --- |
| `prepare` | picks the data day (`ds` Param, else the newest day with published author vectors), publishes `align_examples/ds=<ds>/` (test users: their last tip held out; train/val users: one example per tip after the third, the history before it; candidate sets of m = 4 and 10 with the last-tipped author as ground truth), registers the base model as champion on the very first run, writes the run file `runs/recommender/<version>/run.json` | retried |
| `train` (pool `mspa_gpu`) | the trainer entry point `python -m mspa_tasks.align.train --config <run file>`: the recipe from the champion (below), then Acc@4 and Acc@10 of the new model **and** of the champion on the same validation users; writes `models/recommender/<version>/` (model, `metrics.json`, `eval.json`). The same task in every environment; `[align] launcher` picks, when it runs: `kubernetes` (production) runs a pod (trainer image, GPUs, DeepSpeed ZeRO-3 through `accelerate`, secrets from Kubernetes, deferrable, logs streamed, pod deleted). `local` (embedded default): a CPU subprocess of the worker, a few steps | retried; a retry trains again into the same version folder |
| `register` | the gate: promote only if, for every m, the new model's Acc@m interval over validation users lies above chance (1/m), it is not significantly below the champion (paired interval) and not worse than it by more than `tolerance`; writes the version, status (`champion` / `rejected`), the reason and both models' figures to `model_registry`, and the comparison table to this log | retried |

A rejected version is a normal outcome (the run succeeds; the reason is in the registry and
the log). The promoted champion is what the next `mspa_daily` composer writes with; roll back
by promoting an earlier version: `mspa models list`, `mspa models promote VERSION --reason ...`.

**Recipe** (`recipe` Param, `[align] recipe`): `sft+grpo` (default) = a supervised warm start
on the three-line answers (TRL `SFTTrainer`), then GRPO from it; `sft` or `grpo` alone. The
`train` log shows the warm start's loss per step and, per GRPO step, the rewards and the
share of groups whose completions all scored the same (`frac_reward_zero_std`: such a group
teaches nothing; near 1.0 means GRPO is not learning). `eval.json` and the `register` log give
Acc@m, format and answered rates with 95% intervals over validation users, also split by
whether the right author was in the user's shown history (memory) or not (preference).

**Params**: `ds`, and the settings a run may override (empty = config): `recipe`,
`sft_max_steps` (`[align.sft] max_steps`), `max_steps`, `learning_rate`, `beta`,
`num_generations` (`[align.grpo]`), `max_train_users`, `max_eval_users` (`[align.examples]`),
`tolerance` (`[align.gate]`).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, Param, dag, task

from mspa_airflow.alerts import on_failure
from mspa_airflow.assets import catalog_assets
from mspa_airflow.context import TaskContext, stage
from mspa_airflow.params import param_overrides, setting_param
from mspa_airflow.pods import trainer_operator
from mspa_airflow.schedules import scheduled

RECOMMENDER_MODEL = Asset(name="mspa_recommender_model", uri="mspa://recommender_model",
                          group="mspa")
GPU_POOL = "mspa_gpu"  # created by `make airflow-init`; one slot per trainer node
# [align] knobs a run may set; each Param's type, bounds and description come from the model.
# The run's Params and the [align] setting each one overrides.
OVERRIDABLE = {"recipe": "recipe", "sft_max_steps": "sft.max_steps", "max_steps": "grpo.max_steps",
               "learning_rate": "grpo.learning_rate", "beta": "grpo.beta",
               "num_generations": "grpo.num_generations",
               "max_train_users": "examples.max_train_users",
               "max_eval_users": "examples.max_eval_users", "tolerance": "gate.tolerance"}


@dag(
    dag_id="mspa_retrain",
    **scheduled("0 4 * * 0"),  # Sundays 04:00 UTC
    doc_md=__doc__,
    tags=["mspa", "weekly", "training", "grpo"],
    default_args={
        "owner": "mspa-ml",
        "on_failure_callback": on_failure,
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "execution_timeout": dt.timedelta(hours=12),
    },
    params={
        "ds": Param("", type="string",
                    description="Data day (YYYY-MM-DD); empty = newest day with vectors."),
        **{name: setting_param("align", path, optional=True)
           for name, path in OVERRIDABLE.items()},
    },
)
def mspa_retrain():
    @task(inlets=catalog_assets("sessions", "author_texts", "author_vectors"),
          outlets=catalog_assets("align_examples"),
          doc_md="Publish the alignment examples; make sure a champion exists; write the run file.")
    def prepare(ds=None, run_id=None, params=None, data_interval_end=None) -> dict:
        from mspa_tasks.align.retrain import latest_ready_day

        # A scheduled run trains on the newest day published before it started (the day
        # before its interval ends); a manual run for a logical date uses that date.
        ends = (data_interval_end - dt.timedelta(days=1)).date().isoformat() \
            if data_interval_end else ds
        newest = max(d for d in (ds, ends) if d)
        day = params.get("ds") or latest_ready_day(TaskContext(params).store, on_or_before=newest)
        return stage("align.retrain:prepare_run", day, params, run_id,
                     param_overrides(params, "align", OVERRIDABLE), retry=True)

    @task(doc_md="Register the version; promote it only if the gate passes.",
          outlets=[RECOMMENDER_MODEL])
    def register(prepared: dict, params=None, outlet_events=None) -> dict:
        return stage("align.retrain:register_run", prepared["ds"], params, prepared["version"],
                     retry=True, outlet_events=outlet_events,
                     extras={RECOMMENDER_MODEL: lambda result: {
                         k: result[k] for k in ("version", "status", "champion_version")}})

    prepared = prepare()
    # One graph in every environment: the operator reads [align] launcher when it runs (a pod
    # in production, a local subprocess on the embedded default).
    train = trainer_operator(
        "train", "{{ ti.xcom_pull(task_ids='prepare')['config_uri'] }}",
        pool=GPU_POOL, doc_md="GRPO + evaluation: the trainer pod (GPUs, DeepSpeed ZeRO-3), or a "
                              "local subprocess when [align] launcher = local.")
    prepared >> train >> register(prepared)

mspa_retrain()
