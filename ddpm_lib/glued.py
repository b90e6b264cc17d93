"""Numbers in the prose of every chapter: one value, shown in the book and in JupyterLab.

A chapter computes a number in a code cell and calls ``glue("name", value)``. The text
then shows it with a MyST inline expression, ``{eval}`f"{G['name']:.3f}"```:

- the built book evaluates it in the notebook's kernel (myst-nb, execution mode
  ``inline``), and ``glue`` also stores the value in the cell's output as myst-nb's own
  ``glue`` does (so ``{glue:text}`` can quote it from another page, as the errata do);
- JupyterLab with jupyterlab-myst evaluates it when the markdown cell is run.

Either way the expression is evaluated where it stands, so a number must be glued in a
cell *above* the text that shows it (``tools/glue_to_eval.py --check`` verifies it).
"""

from __future__ import annotations

#: Every glued value, by its glue name.
G: dict = {}

#: The prefix myst-nb gives the MIME types of a value glued without display
#: (``myst_nb.ext.glue.GLUE_PREFIX``); ``tests/test_config.py`` checks they agree.
GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, value, display: bool = True) -> None:
    """Keep ``value`` in ``G[name]`` and glue it for the book.

    The output is the one ``myst_nb.glue`` writes (its display data, with the MIME types
    prefixed when ``display`` is False, and ``{"scrapbook": {name, mime_prefix}}`` as
    metadata), written here because importing myst-nb's function imports nbformat and its
    schema validator, about 5 s at the start of every chapter.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if not isinstance(display, bool):
        raise TypeError(f"display must be True or False, got {display!r}")
    from IPython.core.formatters import format_display_data  # only where notebooks run
    from IPython.display import display as show

    G[name] = value
    bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=prefix)
    show({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)
