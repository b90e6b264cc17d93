# Two entry points, both starting from a fresh clone:
#   make book   set up .venv, build the book into _build/html (executing every notebook,
#               two at a time)
#   make test   set up .venv, check formatting (ruff), run the unit tests and every notebook
#               (nbval), run the student edition (nbval), build the book, open every page
#               in Chromium (tests/test_browser.py), then run the benchmark's smoke test
#   make lab    open the chapters in JupyterLab, in a git-ignored working copy (lab/)
#   make student  write the student edition (_build/student/: exercises without solutions)
# See README.md.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RUFF   := $(VENV)/bin/ruff
LINTED := ddpm_lib tests tools notebooks

# One BLAS/OpenMP thread per process: the test run uses two processes on two cores,
# and torch itself is set to one thread in ddpm_lib.train and in every notebook.
export OMP_NUM_THREADS=1
export MKL_NUM_THREADS=1
export OPENBLAS_NUM_THREADS=1
# No training progress bars in the book build or the test run: in the built book they
# would be ipywidgets (and pull in the 3.6 MB widget manager) for a bar that no reader
# sees move.
export DDPM_PROGRESS=0
# The same for the chapters' own tqdm loops (tqdm reads TQDM_* defaults from the environment).
export TQDM_DISABLE=1
# Finished training runs are kept here and loaded when a run with exactly the same inputs
# comes again (ddpm_lib/train_cache.py): chapters 6 and 7 train the same networks, and the
# book build repeats the runs of the test run's notebooks. `make clean` empties it.
export DDPM_TRAIN_CACHE ?= $(CURDIR)/_build/train-cache

.PHONY: setup book test lint unit student student-test browser-test benchmark-quick clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# `jupyter-book build . -W -n --keep-going`, with two chapters executing at a time
# (tools/build_book.py says how).
book: setup
	$(PY) tools/build_book.py . -W -n --keep-going
	$(PY) tools/check_offline.py _build/html

# Code style: 88 columns, ruff's formatting, no lint errors (settings in pyproject.toml).
lint: setup
	$(RUFF) format --check $(LINTED)
	$(RUFF) check $(LINTED)

# Unit tests and nbval over every notebook, two workers; --dist loadscope keeps all the
# cells of one notebook in one kernel. The browser test needs the built book: it runs
# after `book`, below.
unit: setup
	$(PY) -m pytest -n 2 --dist loadscope --nbval-lax --ignore=tests/test_browser.py

# The student edition: every chapter with each exercise's solution replaced by a scaffold
# to fill in (tools/student.py; see README.md).
student: setup
	$(PY) tools/student.py

# The student edition runs top to bottom under nbval; the scaffold cells (tagged
# nbval-skip) are the student's to fill in. Run after `unit`, it loads the networks the
# chapters trained there from DDPM_TRAIN_CACHE.
student-test: student
	$(PY) -m pytest -n 2 --dist loadscope --nbval-lax _build/student/*.ipynb

# Every page of the built book in headless Chromium (Debian's package; see README.md).
browser-test: setup
	$(PY) -m pytest tests/test_browser.py -v -rs

# The benchmark's smoke run (its full run is `$(PY) tools/benchmark.py`; see README.md).
benchmark-quick: setup
	$(PY) tools/benchmark.py --quick --out _build/benchmark-quick.json

test: lint unit student-test book browser-test benchmark-quick

clean:
	rm -rf _build

# make lab, make lab-reset, make kernel: the chapters in JupyterLab (see README.md).
include tools/lab/lab.mk
