"""The book's configuration agrees with the tools that rely on it."""

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import glue_to_eval  # noqa: E402


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def test_numbers_in_the_prose_are_evaluated_inline():
    # {eval} needs myst-nb's inline execution; the allowed expressions are the converter's.
    config = _config()
    assert config["execute"]["execute_notebooks"] == "inline"
    regex = config["sphinx"]["config"]["nb_eval_name_regex"]
    assert regex == glue_to_eval.EVAL_NAME_REGEX


def test_every_chapter_is_converted_and_in_order():
    # Every notebook of the book shows its numbers as inline expressions, each glued above its use.
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert glue_to_eval.convert_file(path, write=False) is False, (
            f"{path.name} needs conversion"
        )


def _displayed(glue_fn, monkeypatch, *args, **kwargs):
    """What ``glue_fn(*args, **kwargs)`` sends to IPython's display, as (args, kwargs) calls."""
    import IPython.display
    import myst_nb.ext.glue

    calls = []

    def record(*a, **k):
        calls.append((a, k))

    monkeypatch.setattr(IPython.display, "display", record)
    monkeypatch.setattr(myst_nb.ext.glue, "ipy_display", record)
    glue_fn(*args, **kwargs)
    return calls


def test_glue_writes_what_myst_nb_glue_writes(monkeypatch):
    # ddpm_lib.glued.glue writes myst-nb's glue output itself (importing myst-nb's takes
    # seconds); the book's {glue:text} (errata) and duplicate-key checks read that output.
    import myst_nb
    import myst_nb.ext.glue

    from ddpm_lib import glued

    assert glued.GLUE_PREFIX == myst_nb.ext.glue.GLUE_PREFIX
    for value in (0.125, 7, "ε", [1, 2]):
        for display in (True, False):
            ours = _displayed(glued.glue, monkeypatch, "x_name", value, display=display)
            theirs = _displayed(
                myst_nb.glue, monkeypatch, "x_name", value, display=display
            )
            assert len(ours) == 1 and ours == theirs, (value, display)
            assert glued.G["x_name"] == value


def test_glue_names_a_bad_argument():
    import pytest

    from ddpm_lib.glued import glue

    with pytest.raises(TypeError, match="name"):
        glue("", 1)
    with pytest.raises(TypeError, match="display"):
        glue("a", 1, display="no")
