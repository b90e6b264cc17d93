#!/usr/bin/env python
"""Rewrite the chapters' glued numbers as MyST inline expressions, so that they show in JupyterLab too.

    python tools/glue_to_eval.py notebooks/0*.ipynb          # rewrite in place
    python tools/glue_to_eval.py --check notebooks/0*.ipynb  # exit 1 if a notebook needs rewriting
                                                              # or uses a name it does not define

In the markdown of a notebook, every

    {glue:text}`name:fmt`   ->  {eval}`f"{G['name']:fmt}"`
    {glue:text}`name`       ->  {eval}`f"{G['name']}"`
    {glue}`name`, {glue:}`name`, {glue:any}`name`  ->  {eval}`G['name']`

and the code cell that imports ``glue`` from ``myst_nb`` gets a small wrapper instead: it keeps every glued value
in the dict ``G`` (by its glue name) and still calls ``myst_nb.glue``, so every ``glue(...)`` call, every glue name
(including names built in loops with f-strings) and the glued data of the built book stay as they were.

myst-nb evaluates ``{eval}`` when the book is built with ``execute_notebooks: inline`` (in ``_config.yml``), which
also needs ``nb_eval_name_regex`` to allow these expressions (see ``EVAL_NAME_REGEX``); jupyterlab-myst evaluates
them when the markdown cell is run (Run All). Both evaluate an expression in the kernel at that point of the
notebook, so a name must be glued in a code cell *above* the markdown that shows it: ``problems()`` checks it.

It also folds, in JupyterLab, the code cells inside each exercise's ``solution-start``/``solution-end`` (cell
metadata ``jupyter.source_hidden`` and ``outputs_hidden``; ``--no-fold`` leaves them): jupyterlab-myst folds a solution's
prose in its dropdown, but cannot put the code cells that follow into it.

Running the tool again changes nothing (it is idempotent). Notebooks are written as they are stored: JSON with
``indent=1``, ``ensure_ascii=False`` and a trailing newline; metadata and outputs are left alone.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

#: The dict in the kernel that holds every glued value by name.
STORE = "G"

#: The first line of the helper that replaces ``from myst_nb import glue`` (also the marker of a converted cell).
HELPER_MARK = "from ddpm_lib.glued import G, glue"
HELPER = HELPER_MARK + "  # noqa: F401 (G holds the numbers shown in the text)\n"

#: What ``nb_eval_name_regex`` (myst-nb) must allow: a plain name, or the expressions this tool writes.
EVAL_NAME_REGEX = r"""^([A-Za-z_][A-Za-z0-9_]*|f"\{G\['[A-Za-z0-9_]+'\](:[^{}"']*)?\}"|G\['[A-Za-z0-9_]+'\])$"""

# {glue:text}`name:fmt`, {glue:text}`name`, {glue}`name`, {glue:}`name`, {glue:any}`name`
_GLUE_ROLE = re.compile(r"\{glue(?::(text|any)?)?\}`([^`]+)`")
_EVAL_ROLE = re.compile(r"\{eval\}`([^`]+)`")
_IMPORT_LINE = re.compile(r"^from myst_nb import glue[ \t]*(#.*)?$", re.M)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STORE_EXPR = re.compile(
    r"""^(?:f"\{)?G\['([A-Za-z0-9_]+)'\](?::([^{}"']*))?(?:\}")?$"""
)


def source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def set_source(cell, text: str) -> None:
    """Store ``text`` as the notebook does: a list of lines, each but the last ending in a newline."""
    cell["source"] = text.splitlines(keepends=True)


def eval_expression(kind: str | None, key: str) -> str:
    """The ``{eval}`` expression that renders as ``{glue:<kind>}`key``` does."""
    if "::" in key:
        raise ValueError(
            f"cross-document glue reference {key!r} cannot become an inline expression"
        )
    if kind == "text":
        name, _, fmt = key.partition(":")
        name = name.strip()
        if not _NAME.match(name):
            raise ValueError(f"glue name {name!r} is not an identifier")
        return f"f\"{{{STORE}['{name}']{':' + fmt if fmt else ''}}}\""
    name = key.strip()
    if not _NAME.match(name):
        raise ValueError(f"glue name {name!r} is not an identifier")
    return f"{STORE}['{name}']"


def convert_markdown(text: str) -> str:
    return _GLUE_ROLE.sub(
        lambda m: "{eval}`" + eval_expression(m.group(1), m.group(2)) + "`", text
    )


def convert_notebook(nb: dict) -> bool:
    """Convert ``nb`` (a notebook as loaded from JSON) in place. Returns whether anything changed."""
    changed = False
    uses_glue = False
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = source(cell)
        new = convert_markdown(text)
        if new != text:
            set_source(cell, new)
            changed = True
        if _EVAL_ROLE.search(new):
            uses_glue = True
    has_helper = any(
        cell["cell_type"] == "code" and HELPER_MARK in source(cell)
        for cell in nb["cells"]
    )
    if has_helper or not uses_glue:
        return changed
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        text = source(cell)
        if _IMPORT_LINE.search(text):
            set_source(
                cell, _IMPORT_LINE.sub(lambda m: HELPER.rstrip("\n"), text, count=1)
            )
            return True
    if any("glue" in source(c) for c in nb["cells"] if c["cell_type"] == "code"):
        raise ValueError(
            "the notebook glues values but has no line `from myst_nb import glue` to replace"
        )
    return changed


_DIRECTIVE = re.compile(
    r"^[ \t]*(?:`{3,}|:{3,})[ \t]*\{(solution-start|solution-end)\}", re.M
)

#: Cell metadata that folds a code cell in JupyterLab (input and outputs collapsed; the book ignores it).
FOLDED = {"source_hidden": True, "outputs_hidden": True}


def fold_solutions(nb: dict) -> bool:
    """Fold, in JupyterLab, the code cells of every solution (between ``solution-start`` and ``solution-end``).

    jupyterlab-myst folds the prose of a solution in its dropdown, but a solution's code cells are cells of their own:
    they get ``metadata.jupyter.source_hidden``/``outputs_hidden``, which JupyterLab reads when it opens the notebook.
    Returns whether anything changed.
    """
    changed = False
    inside = False
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for m in _DIRECTIVE.finditer(source(cell)):
                inside = m.group(1) == "solution-start"
        elif cell["cell_type"] == "code" and inside:
            jupyter = cell.setdefault("metadata", {}).setdefault("jupyter", {})
            for key, value in FOLDED.items():
                if jupyter.get(key) != value:
                    jupyter[key] = value
                    changed = True
    return changed


def convert_file(path: Path, write: bool = True, fold: bool = True) -> bool:
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    changed = convert_notebook(nb)
    if fold:
        changed = fold_solutions(nb) or changed
    if changed and write:
        path.write_text(
            json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return changed


# ---------------------------------------------------------------------------------------------------------
# Static analysis: which names a notebook's code defines, and which its markdown uses
# ---------------------------------------------------------------------------------------------------------


def _glue_name_pattern(arg: ast.expr) -> re.Pattern | None:
    """A regex for the names a ``glue(<arg>, ...)`` call can produce (f-strings: any text per field)."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return re.compile(re.escape(arg.value) + r"\Z")
    if isinstance(arg, ast.JoinedStr):
        parts = []
        for value in arg.values:
            if isinstance(value, ast.Constant):
                parts.append(re.escape(str(value.value)))
            else:
                parts.append(r"[A-Za-z0-9_]+")
        return re.compile("".join(parts) + r"\Z")
    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute):
        # e.g. f"ch3_r{r:g}".replace(".", ""): any name that starts with the string's leading literal text
        inner = arg.func.value
        lead = ""
        if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            lead = inner.value
        elif (
            isinstance(inner, ast.JoinedStr)
            and inner.values
            and isinstance(inner.values[0], ast.Constant)
        ):
            lead = str(inner.values[0].value)
        return re.compile(re.escape(lead) + r"[A-Za-z0-9_]*\Z")
    return None


def _code_for_ast(text: str) -> str:
    # IPython magics and shell escapes are not Python: blank them out.
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line
        for line in text.splitlines()
    )


def code_definitions(text: str) -> tuple[set[str], list[re.Pattern]]:
    """Names a code cell binds at top level or anywhere (a superset is fine), and patterns of the names it glues."""
    tree = ast.parse(_code_for_ast(text))
    names: set[str] = set()
    glued: list[re.Pattern] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.Call):
            func = node.func
            is_glue = (isinstance(func, ast.Name) and func.id == "glue") or (
                isinstance(func, ast.Attribute) and func.attr == "glue"
            )
            if is_glue and node.args:
                pattern = _glue_name_pattern(node.args[0])
                if pattern is not None:
                    glued.append(pattern)
    return names, glued


def literal_glues(text: str) -> list[str]:
    """The names a code cell glues by a literal string, once per ``glue`` call."""
    return [
        node.args[0].value
        for node in ast.walk(ast.parse(_code_for_ast(text)))
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "glue")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "glue")
        )
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ]


def markdown_uses(text: str) -> list[tuple[str, str]]:
    """(kind, what) for every glue role and inline expression: kind is "glue", "store", "name" or "other"."""
    uses = []
    for m in _GLUE_ROLE.finditer(text):
        uses.append(("glue", m.group(2).partition(":")[0].strip()))
    for m in _EVAL_ROLE.finditer(text):
        expr = m.group(1)
        s = _STORE_EXPR.match(expr)
        if s:
            uses.append(("store", s.group(1)))
        elif _NAME.match(expr):
            uses.append(("name", expr))
        else:
            uses.append(("other", expr))
    return uses


def problems(nb: dict) -> list[str]:
    """What would show as an error or a raw placeholder when the notebook is run top to bottom.

    Every ``{eval}`` must be a plain name bound by a code cell above it, or ``G['name']`` (formatted or not) with
    ``name`` glued by a code cell above it; ``G`` itself must come from the helper. Every ``{glue...}`` role is
    reported (a learner in JupyterLab would see it raw), and so is a name glued by two ``glue`` calls (myst-nb
    warns of a duplicate key, which fails the ``-W`` build).
    """
    out = []
    names: set[str] = set()
    glued: list[re.Pattern] = []
    first_glued: dict[str, int] = {}
    for i, cell in enumerate(nb["cells"]):
        text = source(cell)
        if cell["cell_type"] == "code":
            n, g = code_definitions(text)
            names |= n
            glued += g
            for name in literal_glues(text):
                if name in first_glued:
                    out.append(
                        f"cell {i}: {name!r} is glued again (first in cell {first_glued[name]})"
                    )
                first_glued.setdefault(name, i)
        elif cell["cell_type"] == "markdown":
            for kind, what in markdown_uses(text):
                if kind == "glue":
                    out.append(
                        f"cell {i}: {{glue}} placeholder {what!r} (not shown in JupyterLab)"
                    )
                elif kind == "store":
                    if STORE not in names:
                        out.append(
                            f"cell {i}: {STORE}[{what!r}] used before {STORE} is defined"
                        )
                    elif not any(p.match(what) for p in glued):
                        out.append(
                            f"cell {i}: {what!r} is not glued in any code cell above"
                        )
                elif kind == "name":
                    if what not in names:
                        out.append(
                            f"cell {i}: {what!r} is not defined in any code cell above"
                        )
                else:
                    out.append(
                        f"cell {i}: expression {what!r} is not of a form this book uses"
                    )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 if a notebook needs it",
    )
    parser.add_argument(
        "--no-fold",
        action="store_true",
        help="leave the solutions' code cells unfolded",
    )
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        changed = convert_notebook(nb)
        if not args.no_fold:
            changed = fold_solutions(nb) or changed
        if changed and not args.check:
            path.write_text(
                json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        found = problems(nb)
        n_eval = sum(
            len(_EVAL_ROLE.findall(source(c)))
            for c in nb["cells"]
            if c["cell_type"] == "markdown"
        )
        verb = (
            ("needs conversion" if args.check else "converted")
            if changed
            else "unchanged"
        )
        print(f"{path}: {verb}; {n_eval} inline expressions; {len(found)} problems")
        for p in found:
            print(f"  {p}")
        if found or (args.check and changed):
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
