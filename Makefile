# Two entry points, both starting from a fresh clone:
#   make book   set up .venv, build the book into _build/html (executing every notebook)
#   make test   set up .venv, run the unit tests and every notebook (nbval), build the book,
#               then run the benchmark's smoke test
# See README.md.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
JB     := $(VENV)/bin/jupyter-book

# One BLAS/OpenMP thread per process: the test run uses two processes on two cores,
# and torch itself is set to one thread in ddpm_lib.train and in every notebook.
export OMP_NUM_THREADS=1
export MKL_NUM_THREADS=1
export OPENBLAS_NUM_THREADS=1

.PHONY: setup book test unit benchmark-quick clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

book: setup
	$(JB) build . -W -n --keep-going
	$(PY) tools/check_offline.py _build/html

# Unit tests and nbval over every notebook, two workers; --dist loadscope keeps all the
# cells of one notebook in one kernel.
unit: setup
	$(PY) -m pytest -n 2 --dist loadscope --nbval-lax

# The benchmark's smoke run (its full run is `$(PY) tools/benchmark.py`; see README.md).
benchmark-quick: setup
	$(PY) tools/benchmark.py --quick --out _build/benchmark-quick.json

test: unit book benchmark-quick

clean:
	rm -rf _build
