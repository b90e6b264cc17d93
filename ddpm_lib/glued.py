"""Numbers in the prose of every chapter: one value, shown in the book and in JupyterLab.

A chapter computes a number in a code cell and calls ``glue("name", value)``. The text
then shows it with a MyST inline expression, ``{eval}`f"{G['name']:.3f}"```:

- the built book evaluates it in the notebook's kernel (myst-nb, execution mode
  ``inline``), and ``glue`` also stores the value with myst-nb, as before;
- JupyterLab with jupyterlab-myst evaluates it when the markdown cell is run.

Either way the expression is evaluated where it stands, so a number must be glued in a
cell *above* the text that shows it (``tools/glue_to_eval.py --check`` verifies it).
"""

from __future__ import annotations

#: Every glued value, by its glue name.
G: dict = {}


def glue(name: str, value, display: bool = True) -> None:
    """Keep ``value`` in ``G[name]`` and glue it for the book (``myst_nb.glue``)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    from myst_nb import glue as myst_glue  # only where notebooks run

    G[name] = value
    myst_glue(name, value, display=display)
