"""tools/build_book.py: the book build with chapters executed in parallel processes."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def build_book(monkeypatch):
    # the script patches Sphinx.is_parallel_allowed and sphinx.builders.make_chunks;
    # undo both after the test
    import sphinx.builders
    from sphinx.util.parallel import ParallelTasks

    monkeypatch.setattr(Sphinx, "is_parallel_allowed", Sphinx.is_parallel_allowed)
    monkeypatch.setattr(sphinx.builders, "make_chunks", sphinx.builders.make_chunks)
    monkeypatch.setattr(ParallelTasks, "__init__", ParallelTasks.__init__)
    spec = importlib.util.spec_from_file_location(
        "build_book", ROOT / "tools" / "build_book.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _app(**declared):
    extensions = {
        name: SimpleNamespace(name=name, parallel_read_safe=v, parallel_write_safe=True)
        for name, v in declared.items()
    }
    return SimpleNamespace(extensions=extensions)


def test_only_the_listed_extensions_are_declared_safe(build_book):
    build_book.declare_safe()
    listed = {name: None for name in build_book.UNDECLARED_BUT_SAFE}
    assert Sphinx.is_parallel_allowed(_app(myst_nb=True, **listed), "read")
    # an extension that is not listed and declares nothing still forces a serial read,
    assert not Sphinx.is_parallel_allowed(_app(other=None, **listed), "read")
    # and one that declares itself unsafe is not overruled, listed or not
    unsafe = dict(listed, sphinx_multitoc_numbering=False)
    assert not Sphinx.is_parallel_allowed(_app(**unsafe), "read")


def test_the_build_gets_the_jobs(build_book, monkeypatch, tmp_path):
    """`jupyter-book build` runs as usual, with Sphinx's parallel jobs set."""
    import jupyter_book.sphinx

    calls = []
    monkeypatch.setattr(
        jupyter_book.sphinx, "build_sphinx", lambda *a, **k: calls.append(k) or 0
    )
    (tmp_path / "_config.yml").write_text("title: t\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "intro.md").write_text("# Intro\n")
    assert build_book.main(["--jobs", "2", str(tmp_path), "-W"]) == 0
    assert len(calls) == 1
    assert calls[0]["jobs"] == 2 and calls[0]["warningiserror"] is True


def test_pages_are_handed_out_one_at_a_time(build_book, monkeypatch):
    import sphinx.builders

    pages = [f"page{i}" for i in range(13)]
    assert len(sphinx.builders.make_chunks(pages, 2)) == 3  # Sphinx's own batches
    build_book.one_page_per_task()
    assert sphinx.builders.make_chunks(pages, 2) == [[p] for p in pages]


def test_the_listed_pages_come_first_in_their_order(build_book):
    first = list(build_book.FIRST)
    pages = ["intro", *sorted(first), "notation"]
    assert build_book.in_order(pages) == [*first, "intro", "notation"]
    assert build_book.in_order(["b", first[1], "a"]) == [first[1], "b", "a"]


def test_every_chapter_is_placed(build_book):
    """A chapter left out of FIRST would start after the short pages: list it."""
    chapters = {f"notebooks/{p.stem}" for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert chapters == set(build_book.FIRST)


def _record(args):
    """A task: wait for the file ``gate`` if one is given, then append ``name`` to ``path``."""
    path, name, gate = args
    deadline = time.monotonic() + 30
    while gate is not None and not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    with open(path, "a") as f:
        f.write(name + "\n")


def test_waiting_pages_start_in_the_order_given(build_book, tmp_path):
    """With one process, Sphinx's own tasks start the waiting pages newest first."""
    from sphinx.util.parallel import ParallelTasks

    def run():
        # The first task waits until all four are queued, so the order cannot depend
        # on how fast it finishes (a task done early lets the next one start at once).
        log, gate = tmp_path / "log.txt", tmp_path / "gate"
        log.unlink(missing_ok=True)
        gate.unlink(missing_ok=True)
        tasks = ParallelTasks(1)
        for name in "abcd":
            tasks.add_task(_record, (log, name, gate if name == "a" else None))
        gate.touch()
        tasks.join()
        return log.read_text().split()

    assert run() == list("adcb")  # Sphinx: the first at once, then last-in, first-out
    build_book.one_page_per_task()
    assert run() == list("abcd")


def test_jobs_must_be_positive(build_book, capsys):
    with pytest.raises(SystemExit):
        build_book.main(["--jobs", "0", "."])
    assert "--jobs must be at least 1" in capsys.readouterr().err
