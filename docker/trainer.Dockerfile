# The GRPO trainer image: `accelerate launch` + DeepSpeed ZeRO-3 over mspa_tasks.align.train.
# CUDA 12.8 (devel: DeepSpeed compiles its fused ops with nvcc at first use); torch, trl,
# transformers, accelerate, deepspeed and vLLM (GRPO's generation, colocated) pinned through
# the image's own lock, docker/trainer-constraints.txt (vLLM needs an older transformers
# than the Airflow side's constraints.txt).
# Build from the repository root:  docker build -f docker/trainer.Dockerfile -t mspa/trainer:0.1.0 .
FROM nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04

# TOKENIZERS_PARALLELISM is not a secret (hadolint matches "TOKEN"):
# hadolint ignore=DL3064
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/opt/mspa/cache/hf \
    TOKENIZERS_PARALLELISM=false

# apt versions are pinned by the CUDA base image tag, not per package:
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev git \
    && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /opt/mspa
COPY docker/trainer-constraints.txt docker/trainer-requirements.txt ./
# torch first and pinned (the default wheel for linux x86_64 is the CUDA build).
RUN pip install torch==2.13.0 \
    && pip install -r trainer-requirements.txt -c trainer-constraints.txt

COPY pyproject.toml ./
COPY mspa_tasks ./mspa_tasks
COPY plugins ./plugins
COPY sql ./sql
COPY docker/accelerate_zero3.yaml docker/ds_zero3.json ./docker/
RUN pip install --no-deps --no-build-isolation -e .

# Non-root: the pod's securityContext (runAsNonRoot, runAsUser 1000) matches this user.
RUN useradd --uid 1000 --create-home trainer \
    && mkdir -p /opt/mspa/cache /opt/mspa/var \
    && chown -R trainer:trainer /opt/mspa/cache /opt/mspa/var
USER 1000
ENV MSPA_HOME=/opt/mspa/var

ENTRYPOINT []
CMD ["accelerate", "launch", "--config_file", "/opt/mspa/docker/accelerate_zero3.yaml", "-m", "mspa_tasks.align.train", "--help"]
