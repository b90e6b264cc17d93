#!/usr/bin/env python
"""Write the student edition: every chapter with its exercises' solutions replaced by a scaffold.

    python tools/student.py                       # notebooks/*.ipynb -> _build/student/
    python tools/student.py --out DIR NB.ipynb …  # chosen notebooks, another folder

``make student`` runs the first form. The student edition is generated from the chapters,
never edited by hand. In each chapter, every exercise in sphinx-exercise's gated syntax

    ```{exercise} Title              (kept: the statement says what to write)
    :label: ex-chN-name
    …
    ```
    ```{solution-start} ex-chN-name  (removed, with the prose that follows it,
    :class: dropdown                  every code cell up to the end directive,
    ```                               and the end directive itself)
    …
    ```{solution-end}
    ```

loses its solution, and one code cell takes its place: a scaffold built from the solution's
last line, ``assert dl.exercises.check("ex-chN-name", name1, name2, …)``. For each answer
name, a function the solution defines with ``def`` becomes ``def name(<same parameters>):``
with the solution's docstring (which says what to return, never how) and ``...`` as its
body; any other name becomes ``name = ...  # your answer``. The check line follows, without
the ``assert``, so running the cell says whether the answer is right. An exercise whose
solution has no check gets a cell that asks for the answer in a markdown cell (listed on
the standard output). Scaffold cells are tagged ``nbval-skip`` (the tests run the student
edition with nbval; the scaffolds are the student's to fill in) and ``exercise``.

Every other cell is copied unchanged, and so is any markdown around the directives (the
next exercise's statement usually shares the end directive's cell). The same chapters
always give the same bytes.

The student edition must still run top to bottom. The tool reports, and exits with status 1
for, what would break it: a name bound only by a solution and used by a later cell that is
kept, a glued number the kept text shows but only a solution glues (``glue_to_eval``'s
check, run on the student notebook), a scaffold whose parameters' defaults use such a name,
a solution that is never closed, and a check line it cannot turn into a scaffold. It warns
(status 0) about a later cell that uses a name a solution rebinds (the student edition
runs it with the value from before the solution), a cross-reference to a label that only
a solution defined, and a check line that is not the solution's last line.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import glue_to_eval  # noqa: E402  (its check of the glued numbers in the text)

ROOT = Path(__file__).resolve().parents[1]
#: The book's code column (and ruff's line length).
WIDTH = 88
#: The tags of a scaffold cell: nbval skips it; ``exercise`` marks it for readers and tests.
SCAFFOLD_TAGS = ["nbval-skip", "exercise"]

# An opening fence of a gated solution directive, ``` or :::, e.g. ```{solution-start} ex-ch2-ve
_OPEN = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|:{3,})[ \t]*\{(?P<name>solution-start|solution-end)\}"
    r"[ \t]*(?P<arg>\S*)"
)
# A one-block ``{solution}`` directive (sphinx-exercise's other syntax): not supported.
_PLAIN_SOLUTION = re.compile(r"^[ \t]*(?:`{3,}|:{3,})[ \t]*\{solution\}", re.M)
_LABEL_DEF = re.compile(r"^[ \t]*:(?:label|name):[ \t]*(\S+)|^\((\S+)\)=[ \t]*$", re.M)
_REF_ROLE = re.compile(r"\{(?:eq|numref|ref)\}`(?:[^`<]*<)?([^`<>]+)>?`")


def source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _lines(text: str) -> list[str]:
    """A cell's source as the notebook stores it: lines, each but the last ending in a newline."""
    return text.splitlines(keepends=True)


@dataclass
class Exercise:
    """One exercise's solution: its label, its code cells, and the scaffold that replaces it."""

    label: str
    code: list[str] = field(default_factory=list)
    prose: list[str] = field(default_factory=list)
    #: The answer names of its check line, in order ([] when it has no check).
    names: list[str] = field(default_factory=list)
    #: name -> "function" or "value"
    kinds: dict[str, str] = field(default_factory=dict)
    scaffold: str = ""


@dataclass
class Report:
    """What one chapter's student edition holds and what is wrong with it."""

    name: str
    exercises: list[Exercise] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Markdown: cut the solutions out of the cells that hold the directives
# ---------------------------------------------------------------------------------------


def _closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a directive opened with ``fence`` (same character, as long)."""
    s = line.strip()
    return len(s) >= len(fence) and set(s) == {fence[0]}


def split_markdown(text: str, inside: Exercise | None, report: Report, where: str):
    """Cut the solution parts out of one markdown cell.

    ``inside``: the exercise whose solution is open when the cell starts, or None.
    Returns ``(items, inside)``: ``items`` is a list of ("text", kept markdown),
    ("start", exercise) and ("end", exercise) in the order they occur, and ``inside``
    the exercise still open at the end of the cell. A new exercise is added to the
    report at its start; the prose of a solution is added to its exercise.
    """
    items: list[tuple] = []
    kept: list[str] = []
    lines = text.splitlines()
    i = 0

    def flush():
        if kept:
            items.append(("text", "\n".join(kept)))
            kept.clear()

    while i < len(lines):
        m = _OPEN.match(lines[i])
        if m is None:
            if inside is None:
                kept.append(lines[i])
            else:
                inside.prose.append(lines[i])
            i += 1
            continue
        # a solution directive: skip it to its closing fence
        j = i + 1
        while j < len(lines) and not _closes(lines[j], m["fence"]):
            j += 1
        if j == len(lines):
            report.errors.append(f"{where}: {m['name']} directive is never closed")
        i = j + 1
        if m["name"] == "solution-start":
            label = m["arg"]
            if inside is not None:
                report.errors.append(
                    f"{where}: the solution of {label!r} starts inside that of "
                    f"{inside.label!r}"
                )
            if not label:
                report.errors.append(f"{where}: solution-start without a label")
            flush()
            inside = Exercise(label)
            report.exercises.append(inside)
            items.append(("start", inside))
        else:
            if inside is None:
                report.errors.append(f"{where}: solution-end with no solution open")
                continue
            flush()
            items.append(("end", inside))
            inside = None
    flush()
    # a kept piece loses the blank lines it had beside the cut
    items = [(k, _trim(w)) if k == "text" else (k, w) for k, w in items]
    items = [(k, w) for k, w in items if k != "text" or w]
    return items, inside


def _trim(text: str) -> str:
    """``text`` without its leading and trailing blank lines."""
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Code: the scaffold of one exercise, and the names a cell binds and uses
# ---------------------------------------------------------------------------------------


def _parse(text: str) -> ast.Module:
    return ast.parse(glue_to_eval._code_for_ast(text))


def _is_check(node: ast.AST) -> bool:
    """``<…>exercises.check(...)``, e.g. ``dl.exercises.check("ex-ch2-ve", ve_std)``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and ast.unparse(node.func).endswith("exercises.check")
    )


def _wrap_call(head: str, args: list[str], tail: str, indent: str = "") -> str:
    """``head(args)tail`` as ruff formats it: one line, else the arguments on an indented
    line of their own, else one argument per line with a trailing comma."""
    one = f"{indent}{head}({', '.join(args)}){tail}"
    if len(one) <= WIDTH or not args:
        return one
    inner = indent + "    "
    joined = f"{inner}{', '.join(args)}"
    if len(joined) <= WIDTH and not any("," in a and "(" in a for a in args):
        return f"{indent}{head}(\n{joined}\n{indent}){tail}"
    body = "".join(f"{inner}{a},\n" for a in args)
    return f"{indent}{head}(\n{body}{indent}){tail}"


def _signature(fn: ast.FunctionDef) -> str:
    """``def name(<parameters as in the solution>) -> <return annotation>:``."""
    args = fn.args
    params: list[str] = []
    posonly = args.posonlyargs
    positional = posonly + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)

    def one(a: ast.arg, default) -> str:
        text = a.arg
        if a.annotation is not None:
            text += f": {ast.unparse(a.annotation)}"
            if default is not None:
                return f"{text} = {ast.unparse(default)}"
        elif default is not None:
            return f"{text}={ast.unparse(default)}"
        return text

    for k, (a, d) in enumerate(zip(positional, defaults)):
        params.append(one(a, d))
        if posonly and k == len(posonly) - 1:
            params.append("/")
    if args.vararg is not None:
        params.append("*" + one(args.vararg, None))
    elif args.kwonlyargs:
        params.append("*")
    for a, d in zip(args.kwonlyargs, args.kw_defaults):
        params.append(one(a, d))
    if args.kwarg is not None:
        params.append("**" + one(args.kwarg, None))
    tail = f" -> {ast.unparse(fn.returns)}:" if fn.returns is not None else ":"
    return _wrap_call(f"def {fn.name}", params, tail)


def _docstring(fn: ast.FunctionDef, text: str) -> str | None:
    """The docstring of ``fn`` exactly as written in ``text``, indented by four spaces."""
    first = fn.body[0] if fn.body else None
    if not (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return None
    segment = ast.get_source_segment(text, first.value)
    shift = 4 - first.col_offset
    out = []
    for k, line in enumerate(segment.split("\n")):
        if k == 0:
            out.append("    " + line)
        elif shift >= 0:
            out.append(" " * shift + line if line else line)
        else:
            out.append(line[-shift:] if line[:-shift].strip() == "" else line)
    return "\n".join(out)


def build_scaffold(ex: Exercise, report: Report, where: str) -> list[ast.AST]:
    """Fill in ``ex.names``, ``ex.kinds`` and ``ex.scaffold``; return the scaffold's
    default and annotation expressions (the names they use must exist when it runs)."""
    trees = []
    for k, text in enumerate(ex.code):
        try:
            trees.append(_parse(text))
        except SyntaxError as err:
            report.errors.append(f"{where}: a solution cell does not parse: {err}")
            trees.append(ast.Module(body=[], type_ignores=[]))
    checks = [
        (k, node)
        for k, tree in enumerate(trees)
        for node in tree.body
        if isinstance(node, ast.Assert) and _is_check(node.test)
    ]
    bare = [
        node
        for tree in trees
        for node in tree.body
        if isinstance(node, ast.Expr) and _is_check(node.value)
    ]
    if bare:
        report.warnings.append(
            f"{where}: a solution calls exercises.check without `assert`; only "
            "`assert dl.exercises.check(...)` makes a scaffold"
        )
    if not checks:
        ex.scaffold = (
            f"# Exercise {ex.label} has no automatic check.\n"
            "# Write your answer in a markdown cell below (and code cells if it needs any)."
        )
        return []
    if len(checks) > 1:
        report.errors.append(
            f"{where}: the solution of {ex.label!r} has {len(checks)} check lines; "
            "it must have one"
        )
    k, node = checks[-1]
    if k != len(trees) - 1 or node is not trees[-1].body[-1]:
        report.warnings.append(
            f"{where}: the check of {ex.label!r} is not the last line of the solution's "
            "last code cell"
        )
    call = node.test
    label = call.args[0] if call.args else None
    if not (isinstance(label, ast.Constant) and label.value == ex.label):
        report.errors.append(
            f"{where}: the check line of {ex.label!r} checks "
            f"{ast.unparse(label) if label is not None else 'no label'}"
        )
    bad = [a for a in call.args[1:] if not isinstance(a, ast.Name)] + call.keywords
    if bad:
        report.errors.append(
            f"{where}: the check of {ex.label!r} must pass bare names, not "
            + ", ".join(ast.unparse(a) for a in bad)
        )
    ex.names = [a.id for a in call.args[1:] if isinstance(a, ast.Name)]

    # the last top-level binding of each name in the solution cells
    last: dict[str, tuple[ast.AST, str]] = {}
    for tree, text in zip(trees, ex.code):
        for stmt in tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                last[stmt.name] = (stmt, text)
            else:
                for name in _bound_by(stmt):
                    last[name] = (stmt, text)
    blocks: list[tuple[str, str]] = []
    exprs: list[ast.AST] = []
    for name in ex.names:
        stmt, text = last.get(name, (None, ""))
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            ex.kinds[name] = "function"
            lines = [_signature(stmt)]
            doc = _docstring(stmt, text)
            if doc is not None:
                lines.append(doc)
            lines.append("    ...")
            blocks.append(("def", "\n".join(lines)))
            a = stmt.args
            exprs += [d for d in a.defaults + a.kw_defaults if d is not None]
            exprs += [
                p.annotation
                for p in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]
                if p is not None and p.annotation is not None
            ]
            if stmt.returns is not None:
                exprs.append(stmt.returns)
        else:
            ex.kinds[name] = "value"
            if stmt is None:
                report.warnings.append(
                    f"{where}: {name!r}, checked in {ex.label!r}, is not defined by "
                    "its solution"
                )
            blocks.append(("value", f"{name} = ...  # your answer"))
    check = _wrap_call(ast.unparse(call.func), [json.dumps(ex.label)] + ex.names, "")
    blocks.append(("value", check))
    out = f"# Exercise {ex.label}: fill in the ..., then run this cell."
    previous = None
    for kind, text in blocks:
        if previous is None:
            sep = "\n"
        elif "def" in (kind, previous):
            sep = "\n\n\n"  # two blank lines around a function, as ruff formats it
        else:
            sep = "\n"
        out += sep + text
        previous = kind
    ex.scaffold = out
    return exprs


def _bound_by(stmt: ast.AST) -> set[str]:
    """The module-level names one top-level statement binds (not inside a def, class,
    lambda or comprehension)."""
    names: set[str] = set()

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            for d in node.decorator_list:
                visit(d)
            return
        if isinstance(
            node,
            (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp),
        ):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.Global):
            names.update(node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(stmt)
    return names


def bindings(text: str) -> set[str]:
    """The module-level names a code cell binds."""
    names: set[str] = set()
    for stmt in _parse(text).body:
        names |= _bound_by(stmt)
    return names


def _loads(node: ast.AST, local: frozenset = frozenset()):
    """The names an expression or statement reads, without those local to a lambda, a
    comprehension or a function inside it (a function's body is read when it is called;
    its free names count too)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = node.args
        params = a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]
        inner = set(local) | {p.arg for p in params if p is not None}
        body = node.body if isinstance(node.body, list) else [node.body]
        for stmt in body:
            inner |= _bound_by(stmt) if not isinstance(node, ast.Lambda) else set()
        for default in a.defaults + [d for d in a.kw_defaults if d is not None]:
            yield from _loads(default, local)
        for d in getattr(node, "decorator_list", []):
            yield from _loads(d, local)
        for stmt in body:
            yield from _loads(stmt, frozenset(inner))
        return
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        inner = set(local)
        for gen in node.generators:
            inner |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
        for child in ast.iter_child_nodes(node):
            yield from _loads(child, frozenset(inner))
        return
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        if node.id not in local:
            yield node.id
        return
    for child in ast.iter_child_nodes(node):
        yield from _loads(child, local)


def needs(text: str) -> set[str]:
    """The names a code cell reads from the namespace it runs in: those it loads before
    binding them itself, in the order the cell runs (branches and loops taken as if each
    ran). The body of a function the cell defines reads a name from outside when the
    cell binds it nowhere at top level."""
    tree = _parse(text)
    everywhere = bindings(text)
    out: set[str] = set()

    def block(stmts, bound: set[str]):
        for stmt in stmts:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for n in _loads(stmt):
                    if n not in bound and (n not in everywhere or n in _heads(stmt)):
                        out.add(n)
                bound.add(stmt.name)
            elif isinstance(stmt, (ast.For, ast.AsyncFor)):
                out.update(n for n in _loads(stmt.iter) if n not in bound)
                bound |= {
                    n.id for n in ast.walk(stmt.target) if isinstance(n, ast.Name)
                }
                block(stmt.body + stmt.orelse, bound)
            elif isinstance(stmt, (ast.With, ast.AsyncWith)):
                for item in stmt.items:
                    out.update(n for n in _loads(item.context_expr) if n not in bound)
                    if item.optional_vars is not None:
                        bound |= _bound_by(ast.Expr(item.optional_vars))
                block(stmt.body, bound)
            elif isinstance(stmt, (ast.If, ast.While)):
                out.update(n for n in _loads(stmt.test) if n not in bound)
                block(stmt.body + stmt.orelse, bound)
            elif isinstance(stmt, ast.Try):
                block(stmt.body, bound)
                for handler in stmt.handlers:
                    if handler.type is not None:
                        out.update(n for n in _loads(handler.type) if n not in bound)
                    if handler.name:
                        bound.add(handler.name)
                    block(handler.body, bound)
                block(stmt.orelse + stmt.finalbody, bound)
            else:
                # a simple statement reads (its right-hand side, an augmented target)
                # before it binds
                out.update(n for n in _loads(stmt) if n not in bound)
                bound |= _bound_by(stmt)

    block(tree.body, set())
    return out


def _heads(stmt) -> set[str]:
    """The names a def or class statement reads when it runs (decorators, defaults,
    bases), as opposed to when its function is called."""
    parts = list(stmt.decorator_list)
    if isinstance(stmt, ast.ClassDef):
        parts += stmt.bases + [k.value for k in stmt.keywords]
    else:
        parts += stmt.args.defaults + [d for d in stmt.args.kw_defaults if d]
    return {n for part in parts for n in _loads(part)}


# ---------------------------------------------------------------------------------------
# A chapter
# ---------------------------------------------------------------------------------------


def _cell_id(label: str, taken: set[str]) -> str:
    base = ("exercise-" + re.sub(r"[^A-Za-z0-9_-]", "-", label))[:60]
    cid, k = base, 1
    while cid in taken:
        k += 1
        cid = f"{base}-{k}"
    taken.add(cid)
    return cid


def student_edition(nb: dict, name: str = "notebook") -> tuple[dict, Report]:
    """The student edition of one chapter (a new notebook dict) and its report."""
    report = Report(name)
    cells = nb["cells"]
    taken = {c["id"] for c in cells if "id" in c}
    use_ids = bool(cells) and all("id" in c for c in cells)
    out: list[dict] = []
    inside: Exercise | None = None
    #: names bound by the kept code so far
    kept_names: set[str] = set()
    #: name -> label of the solution that last bound it (and no kept cell since)
    solution_names: dict[str, str] = {}
    removed_labels: set[str] = set()

    def code_error(i, err):
        report.errors.append(f"{name}, cell {i}: code does not parse: {err}")

    for i, cell in enumerate(cells):
        where = f"{name}, cell {i}"
        text = source(cell)
        if cell["cell_type"] == "markdown" and _PLAIN_SOLUTION.search(text):
            report.errors.append(
                f"{where}: a {{solution}} directive; only the gated syntax "
                "(solution-start … solution-end) can be removed"
            )
        if cell["cell_type"] == "markdown" and any(
            _OPEN.match(line) for line in text.splitlines()
        ):
            items, inside_after = split_markdown(text, inside, report, where)
            first_piece = True
            for kind, what in items:
                if kind == "text":
                    new = dict(cell)
                    new["source"] = _lines(what)
                    if not first_piece and use_ids:
                        new["id"] = _cell_id(cell["id"] + "-cont", taken)
                    first_piece = False
                    out.append(new)
                elif kind == "end":
                    ex = what
                    exprs = build_scaffold(ex, report, where)
                    for expr in exprs:
                        for node in ast.walk(expr):
                            if (
                                isinstance(node, ast.Name)
                                and node.id in solution_names
                                and node.id not in kept_names
                            ):
                                report.errors.append(
                                    f"{where}: the scaffold of {ex.label!r} uses "
                                    f"{node.id!r}, which only a solution defines"
                                )
                    scaffold = {"cell_type": "code", "execution_count": None}
                    if use_ids:
                        scaffold["id"] = _cell_id(ex.label, taken)
                    scaffold["metadata"] = {"tags": list(SCAFFOLD_TAGS)}
                    scaffold["outputs"] = []
                    scaffold["source"] = _lines(ex.scaffold)
                    out.append(scaffold)
            inside = inside_after
            for ex in report.exercises:
                removed_labels |= {
                    a or b for a, b in _LABEL_DEF.findall("\n".join(ex.prose))
                }
            continue
        if inside is not None:
            # a cell of the solution: removed
            ex = inside
            if cell["cell_type"] == "code":
                ex.code.append(text)
                try:
                    for n in bindings(text):
                        solution_names[n] = ex.label
                except SyntaxError as err:
                    code_error(i, err)
            else:
                ex.prose.extend(text.splitlines())
            figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
            if figure.get("name"):
                removed_labels.add(figure["name"])
            continue
        # a cell outside every solution: copied unchanged
        out.append(cell)
        if cell["cell_type"] == "code":
            try:
                used, bound = needs(text), bindings(text)
            except SyntaxError as err:
                code_error(i, err)
                continue
            for n in sorted(used & solution_names.keys()):
                if n in kept_names:
                    report.warnings.append(
                        f"{where} uses {n!r}, which the solution of "
                        f"{solution_names[n]!r} rebinds: the student edition runs it "
                        "with the value from before that solution"
                    )
                else:
                    report.errors.append(
                        f"{where} uses {n!r}, which only the solution of "
                        f"{solution_names[n]!r} defines: the student edition would "
                        "fail there"
                    )
            kept_names |= bound
            for n in bound:
                solution_names.pop(n, None)
        elif cell["cell_type"] == "markdown":
            for ref in sorted(set(_REF_ROLE.findall(text)) & removed_labels):
                report.warnings.append(
                    f"{where} refers to {ref!r}, which only a solution defines"
                )
    if inside is not None:
        report.errors.append(
            f"{name}: the solution of {inside.label!r} is never closed"
        )
    student = dict(nb)
    student["cells"] = out
    for problem in glue_to_eval.problems(student):
        report.errors.append(f"{name} (student edition), {problem}")
    return student, report


def dumps(nb: dict) -> str:
    """A notebook as the book stores it: JSON, indent 1, UTF-8, a trailing newline."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def write_edition(paths: list[Path], out: Path) -> list[Report]:
    """Write the student edition of each notebook to ``out`` (same file names); remove
    any other notebook left in ``out`` by an earlier run. Returns the reports."""
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    written = set()
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        student, report = student_edition(nb, path.name)
        target = out / path.name
        data = dumps(student)
        if not target.exists() or target.read_text(encoding="utf-8") != data:
            target.write_text(data, encoding="utf-8")
        written.add(target.name)
        reports.append(report)
    for stale in sorted(out.glob("*.ipynb")):
        if stale.name not in written:
            stale.unlink()
    return reports


def summary(report: Report) -> list[str]:
    """The lines printed for one chapter."""
    checked = [e for e in report.exercises if e.names]
    lines = [
        f"{report.name}: {len(report.exercises)} exercises, {len(checked)} with a check"
    ]
    for e in report.exercises:
        if e.names:
            what = ", ".join(f"{n} ({e.kinds[n]})" for n in e.names)
            lines.append(f"  {e.label}: scaffold for {what}")
        else:
            lines.append(f"  {e.label}: no check in its solution (answer in markdown)")
    lines += [f"  warning: {w}" for w in report.warnings]
    lines += [f"  ERROR: {e}" for e in report.errors]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="chapters to convert (default: notebooks/*.ipynb)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "_build" / "student",
        help="where to write the student edition (default: _build/student)",
    )
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    reports = write_edition(paths, args.out)
    for report in reports:
        print("\n".join(summary(report)))
    n_err = sum(len(r.errors) for r in reports)
    try:
        shown = args.out.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = args.out
    print(
        f"student edition of {len(reports)} notebooks in {shown}: "
        f"{sum(len(r.exercises) for r in reports)} exercises, "
        f"{sum(1 for r in reports for e in r.exercises if e.names)} with a scaffold "
        f"to check; {n_err} errors"
    )
    return 1 if n_err else 0


if __name__ == "__main__":
    sys.exit(main())
