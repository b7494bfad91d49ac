# syntax=docker/dockerfile:1
# polarity in a container: dolfinx 0.11 from the dolfinx-solver-real wheel (PETSc, SLEPc,
# HDF5, MUMPS inside; MPICH from the PyPI mpich wheel), on any Debian-based image with
# apt and a Python >= 3.12 package (the default: Debian trixie, Python 3.13).
#
#   docker build -t polarity .
#   docker run --rm polarity --help
#   docker run --rm polarity check runs/chemotaxis_2d/config.toml      # the shipped cases
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" -w /work polarity \
#       run runs/chemotaxis_2d/config.toml -o out
#   docker run --rm --shm-size=1g --user "$(id -u):$(id -g)" -v "$PWD:/work" -w /work polarity \
#       mpiexec -n 4 polarity run runs/chemotaxis_2d/config.toml -o out
# podman takes the same commands (rootless podman: --userns=keep-id instead of --user).
# Behind a TLS-intercepting proxy, pass its CA bundle as a build secret (never stored in
# the image): docker build --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt .
# More (podman ulimits, Apptainer/Singularity, host MPI): docs/containers.md;
# `make docker-test` builds this file with podman and runs the documented commands.
ARG BASE=debian:trixie-slim
FROM ${BASE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# A C compiler and the Python headers stay in the image: FFCx compiles forms at run time
# (new models, other meshes), and every form fails without them. The gmsh wheel links
# X11 and OpenGL libraries even when it meshes without a display. dpkg leaves out what a
# headless, non-LTO use never loads (about 300 MB): documentation and translations, Mesa's
# GPU drivers and their LLVM, GCC's LTO back end and sanitizer run-times, static libpython.
# hadolint ignore=DL3008
RUN printf '%s\n' \
        'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
        'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' \
        'path-exclude=/usr/share/locale/*' 'path-exclude=/usr/share/lintian/*' \
        'path-exclude=/usr/lib/*/libLLVM*' 'path-exclude=/usr/lib/*/libgallium*' \
        'path-exclude=/usr/lib/*/libz3.so*' 'path-exclude=/usr/lib/*/dri/*' \
        'path-exclude=/usr/libexec/gcc/*/lto1' 'path-exclude=/usr/bin/*lto-dump*' \
        'path-exclude=/usr/lib/*/lib[aptl]san.so*' 'path-exclude=/usr/lib/*/libhwasan.so*' \
        'path-exclude=/usr/lib/*/libubsan.so*' 'path-exclude=/usr/lib/*/libpython3*.a' \
        'path-exclude=/usr/lib/python3*/config-*/libpython3*.a' \
        > /etc/dpkg/dpkg.cfg.d/polarity-slim \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        gcc libc6-dev python3 python3-dev python3-venv \
        libgl1 libglu1-mesa libx11-6 libxcursor1 libxext6 libxfixes3 libxft2 libxinerama1 \
        libxrender1 libfontconfig1 libgomp1 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/log/*

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
# The wheels' documentation, examples (gmsh's) and test suites (numpy's, h5py's) go; their
# compiled bytecode stays (every rank imports dolfinx; the venv is not the user's to write).
COPY pyproject.toml ./
# The package from this folder; its dependencies' versions are set in pyproject.toml.
# hadolint ignore=DL3013
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && mkdir -p solver && touch solver/__init__.py \
    && pip install ".[dolfinx,sbml]" \
    && pip uninstall -y polarity-solver \
    && rm -rf solver build ./*.egg-info /opt/venv/share/doc /opt/venv/lib/gmsh.jl /root/.cache \
    && find /opt/venv/lib/python3*/site-packages -mindepth 2 -type d -name tests -prune \
        -exec rm -rf {} +
COPY solver/ solver/
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && pip install --no-deps --no-compile . \
    && rm -rf build ./*.egg-info solver /root/.cache \
    && python -m compileall -q "$(python -c 'import solver, os; print(os.path.dirname(solver.__file__))')" \
    && polarity --help > /dev/null
COPY runs/ runs/
COPY meshes/ meshes/

# Forms of the shipped cases, compiled now into the image's cache: two steps of each case
# through `polarity run` (the forms of a run depend on the model, not on the mesh or the
# number of ranks). The cache stays writable for any user, so other models add theirs.
RUN mkdir -p "$XDG_CACHE_HOME" \
    && python -c 'import sys; from solver import config; [print(p, repr(2 * config.load(p).time.dt)) for p in sys.argv[1:]]' \
        runs/*/config.toml > /tmp/steps \
    && while read -r case end; do \
        polarity run "$case" -o "/tmp/forms/$(basename "$(dirname "$case")")" --set "time.end=$end" \
            --set "output.every=$end" > /dev/null || exit 1; \
    done < /tmp/steps \
    && rm -rf /tmp/forms /tmp/steps \
    && chmod -R a+rwX "$XDG_CACHE_HOME"

# The entry point: polarity, or a program of the image (mpiexec, bash, python) named as
# the first argument. When the output folder is a folder of the host that the container's
# user cannot write, it says in one line how to run as the caller, and exits with 2.
# Its text is the lines below that start with "#>" (this file, read at build time).
#>#!/bin/sh
#># polarity's entry point in the container (written by the Dockerfile from its "#>" lines).
#>commands=" run check job sweep info plot paraview mesh import export "  # polarity's subcommands
#>
#># check COMMAND ARG...: when the folder the command writes in (-o/--out/--figures, else
#># run's <case>/out and sweep's <case>/sweep) is a folder of the host that this user
#># cannot write, one line saying how to run as the caller, and exit 2.
#>check() {
#>    command=${1:-} target="" config=""
#>    while [ $# -gt 1 ]; do
#>        shift
#>        case $1 in
#>            -o | --out | --figures) target=${2:-} ;;
#>            --out=* | --figures=*) target=${1#*=} ;;
#>            -o?*) target=${1#-o} ;;
#>            output.dir=*) config=/ ;; # --set output.dir=...: not <case>/out
#>            *.toml) config=${config:-$1} ;;
#>        esac
#>    done
#>    if [ -z "$target" ] && [ -f "$config" ] \
#>        && ! grep -qE '^[[:space:]]*dir[[:space:]]*=' "$config"; then
#>        case $command in
#>            run) target=$(dirname -- "$config")/out ;;
#>            sweep) target=$(dirname -- "$config")/sweep ;;
#>        esac
#>    fi
#>    [ -n "$target" ] && [ "$(id -u)" != 0 ] || return 0
#>    folder=$target # the nearest folder that exists
#>    while [ ! -d "$folder" ] && [ "$folder" != "$(dirname -- "$folder")" ]; do
#>        folder=$(dirname -- "$folder")
#>    done
#>    owner=$(stat -c %u -- "$folder" 2> /dev/null) || return 0
#>    if [ ! -w "$folder" ] && [ "$owner" != "$(id -u)" ] \
#>        && [ "$(stat -c %m -- "$folder")" != / ]; then
#>        echo "error: cannot write in $(readlink -f -- "$folder"), a folder of the host owned by" \
#>            "uid $owner (the container runs as uid $(id -u)): run the container as yourself," \
#>            "docker run --user \"\$(id -u):\$(id -g)\" ... (rootless podman: --userns=keep-id)" >&2
#>        exit 2
#>    fi
#>}
#>
#># after_polarity PROGRAM ARG...: check the arguments that follow the word polarity.
#>after_polarity() {
#>    while [ $# -gt 0 ] && [ "$1" != polarity ]; do shift; done
#>    if [ $# -gt 0 ]; then
#>        shift
#>        check "$@"
#>    fi
#>}
#>
#>if [ $# -gt 0 ] && [ "${1#-}" = "$1" ] && [ "${commands#* "$1" }" = "$commands" ] \
#>    && command -v -- "$1" > /dev/null 2>&1; then
#>    # a program of the image, e.g. mpiexec -n 4 polarity run CONFIG -o OUT
#>    after_polarity "$@"
#>    exec "$@"
#>fi
#>check "$@"
#>exec polarity "$@"
COPY Dockerfile /tmp/
RUN sed -n 's/^#>//p' /tmp/Dockerfile > /usr/local/bin/polarity-container \
    && chmod 0755 /usr/local/bin/polarity-container \
    && rm /tmp/Dockerfile \
    && sh -n /usr/local/bin/polarity-container

# A non-root user, named by number in USER so any runtime can resolve it; any other
# user (docker run --user) works as well.
RUN useradd --no-create-home --home-dir /opt/polarity --uid 10001 --shell /bin/bash polarity
USER 10001:10001

ENTRYPOINT ["polarity-container"]
CMD ["--help"]
