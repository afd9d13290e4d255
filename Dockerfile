# syntax=docker/dockerfile:1
#
# empo dev container: the project installed editable, reachable over SSH by its
# owner's key only. Nothing secret is ever written into a layer: the SSH public
# key, the W&B key and the git identity are read at run time (docs/container.md;
# docker/entrypoint.sh; .env.template).
#
#   CPU : docker build -t empo-dev:cpu .
#   CUDA: docker build -t empo-dev:cuda --build-arg DEVICE=cuda .
#
# Both base images are pinned to exact version tags. Pin digests as well by
# appending @sha256:... once they are read from your registry, for example
#   --build-arg CUDA_BASE_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04@sha256:...
ARG CPU_BASE_IMAGE=debian:12.12-slim
ARG CUDA_BASE_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04
# cpu or cuda: chooses the base image and, unless TORCH_VARIANT is given, the
# PyTorch wheel index (cpu, or cu128 to match the CUDA 12.8 base image).
ARG DEVICE=cpu

FROM ${CPU_BASE_IMAGE} AS base-cpu

FROM ${CUDA_BASE_IMAGE} AS base-cuda

FROM base-${DEVICE} AS dev
ARG DEVICE
ARG TORCH_VARIANT=
ARG TORCH_INDEX_URL=
ARG USERNAME=dev
ARG USER_UID=1000
ARG USER_GID=1000

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# System packages. The package's own host keys are deleted in the same layer:
# they would otherwise be shared by every copy of the image in the registry.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates git less openssh-client openssh-server procps \
        python3 python3-venv tini tmux \
    && rm -f /etc/ssh/ssh_host_* \
    && rm -rf /var/lib/apt/lists/*

# The non-root dev user, with the UID/GID of the owner on the host so that
# bind-mounted checkouts stay writable. An existing user or group holding the
# requested ids (ubuntu:24.04 ships "ubuntu" as 1000:1000) is removed first.
# Its password is "*": no password can ever match, yet sshd does not treat
# the account as locked.
RUN if existing="$(getent passwd "${USER_UID}" | cut -d: -f1)" && [[ -n "$existing" ]]; then \
        userdel --remove "$existing"; \
    fi \
    && if existing="$(getent group "${USER_GID}" | cut -d: -f1)" && [[ -n "$existing" ]]; then \
        groupdel "$existing"; \
    fi \
    && groupadd --gid "${USER_GID}" "${USERNAME}" \
    && useradd --uid "${USER_UID}" --gid "${USER_GID}" --create-home \
        --shell /bin/bash --password '*' "${USERNAME}" \
    && install -d -o "${USERNAME}" -g "${USERNAME}" /opt/venv /workspace/empo \
    && printf 'export PATH="/opt/venv/bin:$PATH"\nexport VIRTUAL_ENV=/opt/venv\n' \
        > /etc/profile.d/empo-venv.sh

COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/empo-entrypoint
COPY --chmod=0755 docker/healthcheck.sh /usr/local/bin/empo-healthcheck
COPY --chmod=0644 docker/sshd_config /etc/empo/sshd_config

USER ${USERNAME}
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
WORKDIR /workspace/empo

# PyTorch first, from the index of the chosen variant (the version comes from
# requirements.txt), then the pinned requirements: this layer is reused as
# long as the requirement files do not change.
COPY --chown=${USER_UID}:${USER_GID} requirements.txt requirements_dev.txt ./
RUN variant="${TORCH_VARIANT:-$([[ "${DEVICE}" == cuda ]] && echo cu128 || echo cpu)}" \
    && index="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/${variant}}" \
    && torch_pin="$(grep -E '^torch==' requirements.txt)" \
    && python3 -m venv /opt/venv \
    && pip install --no-cache-dir --upgrade pip \
    && pip install --no-cache-dir --index-url "${index}" "${torch_pin}" \
    && pip install --no-cache-dir -r requirements.txt

# The project itself, editable (requirements_dev.txt holds "-e ."). The
# .dockerignore keeps .git, .env files, keys, runs/ and wandb/ out of the
# build context.
COPY --chown=${USER_UID}:${USER_GID} . .
RUN pip install --no-cache-dir -r requirements_dev.txt \
    && python -c "import empo, torch; print('empo', empo.__file__, 'torch', torch.__version__)"

ENV SSH_PORT=2222
EXPOSE 2222
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/empo-healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/empo-entrypoint"]
