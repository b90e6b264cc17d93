"""Build the book with `jupyter-book build`, reading (and so executing) the chapters in parallel.

Usage: python tools/build_book.py [--jobs N] [jupyter-book build options] PATH

Executing the notebooks is nearly all of a build, and each chapter's kernel runs on one
thread (the chapters set it), so on a machine with two cores two chapters can run at
once. Jupyter Book 1's command line has no option for Sphinx's parallel build, but the
function it calls, ``jupyter_book.sphinx.build_sphinx``, takes ``jobs``; this script runs
the same command with ``jobs`` set. ``--jobs`` defaults to the number of CPUs this
process may use (at most 2: a third chapter would only wait for a core).
Sphinx would split the pages into a few batches in the order of their names, one batch
per process; as the chapters' run times differ a lot (chapter 6 takes several times as
long as chapter 4), this script makes every page a batch of its own, so a process takes
the next page as soon as it is free, and hands the pages out in the order of ``FIRST``
(longest first; Sphinx itself would start the waiting pages last-in, first-out). myst-nb, which executes the notebooks, declares itself
safe for that; two extensions that Jupyter Book loads do not say either way, so Sphinx
would read serially (with a warning, an error under -W). They are safe for the reason
given in ``UNDECLARED_BUT_SAFE``, and this script says so for them.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

#: Extensions loaded by Jupyter Book that do not declare ``parallel_read_safe``, and why
#: reading pages in several processes cannot change what they do (sphinx-multitoc-numbering
#: 0.1.3, sphinx-jupyterbook-latex 1.0.0).
UNDECLARED_BUT_SAFE = {
    # numbers the chapters across the tables of contents once every page has been read
    # and merged, in the main process; it keeps no state while pages are read
    "sphinx_multitoc_numbering": "acts after reading, in the main process",
    # its transforms act only when the LaTeX builder runs
    "sphinx_jupyterbook_latex": "acts only in LaTeX builds",
}


#: The pages that start first, in this order; the other pages follow in Sphinx's order.
#: With the longest chapters first, the build ends on short pages in both processes
#: rather than on one long chapter in one. Chapter 6 goes first of all: later chapters
#: load the networks it trains (ddpm_lib/train_cache.py) rather than train them again.
FIRST = (
    "notebooks/06_results",
    "notebooks/11_beyond",
    "notebooks/05_loss",
    "notebooks/03_langevin",
    "notebooks/08_outputs",
    "notebooks/07_deterministic",
    "notebooks/10_guidance",
    "notebooks/01_forward_chain",
    "notebooks/09_variance",
    "notebooks/02_closed_form",
    "notebooks/A1_metrics",
    "notebooks/04_reverse_process",
)


def in_order(pages) -> list:
    """``pages`` with those of ``FIRST`` first, in its order, then the rest as given."""
    first = [page for page in FIRST if page in pages]
    return first + [page for page in pages if page not in first]


class FirstInFirstOut(dict):
    """A dict whose ``popitem`` takes the oldest item (a plain dict takes the newest)."""

    def popitem(self):
        key = next(iter(self))
        return key, self.pop(key)


def declare_safe() -> None:
    """Mark the extensions of ``UNDECLARED_BUT_SAFE`` as safe for parallel reading when
    Sphinx asks (only if they still declare nothing)."""
    from sphinx.application import Sphinx

    asks = Sphinx.is_parallel_allowed

    def is_parallel_allowed(app, typ):
        for name in UNDECLARED_BUT_SAFE:
            ext = app.extensions.get(name)
            if ext is not None and ext.parallel_read_safe is None:
                ext.parallel_read_safe = True
        return asks(app, typ)

    Sphinx.is_parallel_allowed = is_parallel_allowed


def one_page_per_task() -> None:
    """Make Sphinx hand out the pages one at a time to its processes (reading and
    writing), in the order of :func:`in_order`."""
    import sphinx.builders
    from sphinx.util.parallel import ParallelTasks

    sphinx.builders.make_chunks = lambda pages, nproc, maxbatch=10: [
        [page] for page in in_order(pages)
    ]
    setup = ParallelTasks.__init__

    def __init__(self, nproc: int) -> None:
        setup(self, nproc)
        self._precvsWaiting = FirstInFirstOut()  # start the waiting tasks in order

    ParallelTasks.__init__ = __init__


def default_jobs() -> int:
    return max(1, min(2, len(os.sched_getaffinity(0))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs",
        type=int,
        default=default_jobs(),
        help="processes that read and execute pages at once (default: %(default)s)",
    )
    args, rest = parser.parse_known_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")

    import jupyter_book.sphinx as jb_sphinx
    from jupyter_book.cli.main import main as jb_cli

    declare_safe()
    one_page_per_task()
    # `jupyter-book build` imports build_sphinx from this module when it runs
    jb_sphinx.build_sphinx = functools.partial(jb_sphinx.build_sphinx, jobs=args.jobs)
    print(f"building with {args.jobs} parallel job(s)", flush=True)
    try:
        jb_cli(["build", *rest], standalone_mode=False)
    except SystemExit as stop:  # click's exit with the build's status
        return int(stop.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
