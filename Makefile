# Two commands for a fresh machine:
#   make demo   install into .venv, then run the whole pipeline on embedded defaults
#   make test   install into .venv, then run the whole test suite (starts a local Slurm)
#               (the demo end to end is its own tier: make test-demo; CI runs both)
#   make docs   build the documentation site into site/ (mkdocs --strict, no network)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-demo test-fast test-real docs slurm-start slurm-stop slurm-status clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt tools/install_venv.sh
	tools/install_venv.sh $(VENV)
	touch $(STAMP)

demo: install
	$(VENV)/bin/galaxy-hpc demo

test: install
	$(PY) -m pytest -q -m "not real and not demo" --durations=25

# `galaxy-hpc demo` end to end, checked from its report (~5 minutes on 2 idle cores);
# CI runs it after `make test`.
test-demo: install
	$(PY) -m pytest -q -m demo

# The published model sizes (SD-1.5, dinov2-base) on 2 CPU ranks, with their memory per
# rank: ~15 minutes and ~15 GB; not part of `make test`.
test-real: install
	$(PY) -m pytest -q -s -m real tests/real

# Without the Slurm/MPI integration tests (they still run in `make test` and CI).
test-fast: install
	$(PY) -m pytest -q -m "not slurm and not mpi and not real"

# The configuration reference is checked first: a stale one fails the build (and CI).
docs: install
	$(PY) tools/config_reference.py --check
	$(PY) -m mkdocs build --strict --site-dir site

slurm-start:
	tests/cluster/local_slurm.sh start

slurm-stop:
	tests/cluster/local_slurm.sh stop

slurm-status:
	tests/cluster/local_slurm.sh status

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo_output logs site
