#!/usr/bin/env bash
# Create .venv and install galaxy-hpc with the dependency versions it is tested with.
#
# torch is the one package that must not move: an unpinned `pip install torch`
# pulls a multi-GB CUDA build. So:
# - if the Python we start from already has a CUDA-enabled torch (a cluster's
#   pytorch module, an NGC container), the venv sees it (--system-site-packages)
#   and everything else is constrained to that torch;
# - otherwise torch/torchvision are installed first at the pinned versions in
#   constraints.txt, and everything else is installed with those constraints.
# Usage: tools/install_venv.sh [VENV_DIR]   (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail

cd "$(dirname "$0")/.."
venv="${1:-.venv}"
python="${PYTHON:-python3}"

"$python" - <<'PY' || { echo "install: Python >= 3.10 is needed (set PYTHON=...)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY

constraints="$venv/constraints.txt"
if "$python" -c "import torch, sys; sys.exit(0 if torch.version.cuda and torch.cuda.is_available() else 1)" 2>/dev/null; then
    torch_version=$("$python" -c "import torch; print(torch.__version__.split('+')[0])")
    echo "install: keeping the CUDA torch $torch_version of $python"
    "$python" -m venv --system-site-packages "$venv"
    mkdir -p "$venv"
    # Pin torch to what is there; drop torchvision's pin if the site has its own.
    grep -v -E '^(torch|torchvision)==' constraints.txt > "$constraints"
    echo "torch==$torch_version" >> "$constraints"
    if tv=$("$python" -c "import torchvision; print(torchvision.__version__.split('+')[0])" 2>/dev/null); then
        echo "torchvision==$tv" >> "$constraints"
    fi
else
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
    cp constraints.txt "$constraints"
    pins=$(grep -E '^(torch|torchvision)==' constraints.txt | tr '\n' ' ')
    echo "install: torch/torchvision first: $pins"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $pins
fi

# MPI: on a laptop/CI the mpich wheel ships an MPI and mpiexec. On a cluster
# mpi4py must use the site's MPI (cray-mpich on Perlmutter) so that srun starts
# it: GHPC_SYSTEM_MPI=1 builds mpi4py from source with $MPICC (e.g. "cc -shared").
extras="test,docs,local-mpi"
if [[ "${GHPC_SYSTEM_MPI:-0}" == "1" ]]; then
    extras="test,docs"
    grep -v -E '^(mpi4py|mpich)==' "$constraints" > "$constraints.tmp" && mv "$constraints.tmp" "$constraints"
    echo "install: mpi4py against the system MPI (MPICC=${MPICC:-mpicc})"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-binary=mpi4py --no-cache-dir mpi4py
fi

echo "install: galaxy-hpc and its dependencies (constrained by $constraints)"
"$venv/bin/pip" install --quiet --disable-pip-version-check -c "$constraints" -e ".[$extras]"
"$venv/bin/python" -c "import torch, deepspeed, diffusers, galaxy_hpc; print(f'install: ok (torch {torch.__version__}, cuda {torch.cuda.is_available()})')" 2>/dev/null \
    || { echo "install: the environment does not import; see the pip output above" >&2; exit 1; }

# DeepSpeed on CPU JIT-compiles a shared-memory collective the first time a
# process group starts (40-100 s, cached in ~/.cache/torch_extensions). Build
# it once here, on an idle machine, rather than in every rank of the first job.
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "install: building DeepSpeed's CPU shared-memory op (once)"
    # With the venv's ninja first on PATH, as hpc.zero puts it for every job: two ninja
    # versions hash build commands differently and would rebuild each other's output.
    PATH="$(cd "$venv/bin" && pwd):$PATH" DS_ACCELERATOR=cpu "$venv/bin/python" -c "from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder; ShareMemCommBuilder().load(verbose=False)" >/dev/null 2>&1 \
        || echo "install: warning: could not prebuild it; the first DeepSpeed job will" >&2
fi
