#!/usr/bin/env bash
# One-shot GPU check (issue 18): bench_train, bench_generate, bench_fid and bench_data on one
# GPU in under ~8 minutes, one table (see benchmarks/README.md).
#
#   benchmarks/gpu_check.sh [--out DIR] [--fid-weights FILE] [--budget SECONDS] [--cap-scale K]
#   benchmarks/gpu_check.sh --dry-run --out DIR    # CPU, tiny sizes, < 2 minutes (CI)
#
# PYTHON picks the interpreter (default: the repository's .venv, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
# The package from this checkout even where it is not installed (a lent machine's image).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" benchmarks/gpu_check.py "$@"
