# polarity in a container: dolfinx 0.11 from the dolfinx-solver-real wheel (PETSc, SLEPc,
# HDF5, MUMPS inside; MPICH from the PyPI mpich wheel).
#
#   docker build -t polarity .
#   docker run --rm polarity                       # polarity --help
#   docker run --rm -v "$PWD":/work -w /work polarity run runs/CASE/config.toml -o out
# MPI inside the container (ranks <= cores; MPICH needs a larger /dev/shm than Docker's 64 MB):
#   docker run --rm --shm-size=1g -v "$PWD":/work -w /work --entrypoint mpiexec polarity \
#       -n 4 polarity run runs/CASE/config.toml -o out
# If `import dolfinx` dies with UCX errors about an ib/mana device, add -e UCX_TLS=self,sm,tcp.
FROM python:3.12-slim-bookworm

# FFCx compiles the forms with the C compiler at run time, so it stays in the image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

# A non-root user, named by number in USER so any runtime can resolve it.
RUN useradd --create-home --uid 10001 --shell /bin/bash polarity

# The wheel wants an environment of its own: a venv, first on PATH.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN python -m venv /opt/venv

WORKDIR /opt/polarity

# Dependencies first (a layer that survives changes to the code), then the package.
COPY pyproject.toml ./
RUN pip install --no-cache-dir "./[dolfinx]"
COPY solver/ solver/
RUN pip install --no-cache-dir --no-deps . && rm -rf build ./*.egg-info
COPY --chown=polarity:polarity runs/ runs/
COPY --chown=polarity:polarity meshes/ meshes/

USER 10001:10001
# FFCx's form cache ($XDG_CACHE_HOME/fenics); nothing is compiled ahead of time.
ENV XDG_CACHE_HOME=/home/polarity/.cache \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1

ENTRYPOINT ["polarity"]
CMD ["--help"]
