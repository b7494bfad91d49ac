# syntax=docker/dockerfile:1
# polarity in a container: dolfinx 0.11 from the dolfinx-solver-real wheel (PETSc, SLEPc,
# HDF5, MUMPS inside; MPICH from the PyPI mpich wheel), on any Debian-based image with
# apt and a Python >= 3.12 package (the default: Debian trixie, Python 3.13).
#
#   docker build -t polarity .
#   docker run --rm polarity                       # polarity --help
#   docker run --rm -v "$PWD":/work -w /work polarity run runs/CASE/config.toml -o out
# MPI inside the container (ranks <= cores; MPICH needs a larger /dev/shm than Docker's 64 MB):
#   docker run --rm --shm-size=1g -v "$PWD":/work -w /work --entrypoint mpiexec polarity \
#       -n 4 polarity run runs/CASE/config.toml -o out
# If `import dolfinx` dies with UCX errors about an ib/mana device, add -e UCX_TLS=self,sm,tcp.
# Behind a TLS-intercepting proxy, pass its CA bundle as a build secret (never stored in
# the image): docker build --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt .
# Apptainer/Singularity, host MPI (MPICH ABI) and the tested podman recipe: README.md,
# section "Clusters"; `make docker-test` builds this file with podman and runs 2 ranks.
ARG BASE=debian:trixie-slim
FROM ${BASE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# A C compiler and the Python headers stay in the image: FFCx compiles forms at run time
# (new models, other meshes), and every form fails without them. The gmsh wheel links
# X11 and OpenGL libraries even when it meshes without a display.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        gcc libc6-dev python3 python3-dev python3-venv \
        libgl1 libglu1-mesa libx11-6 libxcursor1 libxext6 libxfixes3 libxft2 libxinerama1 \
        libxrender1 libfontconfig1 libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# A non-root user, named by number in USER so any runtime can resolve it.
RUN useradd --create-home --uid 10001 --shell /bin/bash polarity

# The wheel wants an environment of its own: a venv, first on PATH. FFCx's form cache
# ($XDG_CACHE_HOME/fenics) lives outside any home folder, so Apptainer's bind of the
# host $HOME does not hide it.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_CACHE_HOME=/opt/polarity/cache \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1
RUN python3 -m venv /opt/venv

WORKDIR /opt/polarity

# Dependencies first (a layer that survives changes to the code), then the package.
# The optional `cacert` secret is the CA bundle pip trusts (a proxy's); absent, pip's own.
COPY pyproject.toml ./
# The package from this folder; its dependencies' versions are set in pyproject.toml.
# hadolint ignore=DL3013
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && mkdir -p solver && touch solver/__init__.py \
    && pip install ".[dolfinx]" \
    && pip uninstall -y polarity-solver \
    && rm -rf solver build ./*.egg-info
COPY solver/ solver/
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && pip install --no-deps . \
    && rm -rf build ./*.egg-info \
    && polarity --help > /dev/null
COPY runs/ runs/
COPY meshes/ meshes/
COPY tools/precompile-forms tools/

# Forms of the shipped cases, compiled now into the image's cache (the cache stays
# writable for any user, so other models and meshes can add theirs).
RUN python tools/precompile-forms runs/*/config.toml \
    && chmod -R a+rwX "$XDG_CACHE_HOME"

USER 10001:10001
WORKDIR /home/polarity

ENTRYPOINT ["polarity"]
CMD ["--help"]
