"""The student edition (tools/student.py, ``make student``): no solution survives, and
each exercise keeps its statement and gets one scaffold cell to fill in.

(a) On small fixture notebooks (tests/fixtures/), the scaffolds are exactly as specified:
    a function answer with its docstring, a value answer, an answer spread over two solution
    cells, and an exercise without a check; and what would break the student edition (a
    name or a glued number that only a solution defines) is reported.
(b) On every chapter, as it is today (exercises with a check line and exercises without
    one alike): no solution directive, no solution code line and no solution prose is left;
    every exercise label is kept; each solution became exactly one scaffold cell, tagged
    nbval-skip, that holds no solution logic; every cell outside the solutions is copied
    unchanged; the student edition would run (no error reported); running the tool twice
    gives the same bytes.

The solutions are found here with a scanner of this file's own, not with the tool's parser.
That the student notebooks run top to bottom is checked by nbval (``make student-test``).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import student  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXAMPLE = FIXTURES / "student_exercises.ipynb"

# ---------------------------------------------------------------------------------------
# An independent scanner of the gated solutions
# ---------------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(`{3,}|:{3,})\s*\{(solution-start|solution-end)\}\s*(\S*)")
_CHECK = re.compile(r'^assert\s+dl\.exercises\.check\(\s*"([^"]+)"\s*,?(.*)\)\s*$')
# a line with nothing to give away: blank, brackets and punctuation, a fence, a fence option
_TRIVIAL = re.compile(r"^[\s()\[\]{}.,:;`$\\]*$|^:class: dropdown$")


def text_of(cell) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def scan(nb):
    """Split a source notebook into what a student may see and what is solution.

    Returns ``(kept_lines, solutions, plain, fenced)``: the stripped lines outside every
    solution; label -> {"code": [code cell texts], "text": [solution markdown lines]};
    the cells wholly outside the solutions (copied unchanged); the indices of the
    markdown cells that hold a solution directive.
    """
    kept, solutions, plain, fenced = set(), {}, [], []
    label = None  # the open solution
    for i, cell in enumerate(nb["cells"]):
        text = text_of(cell)
        has_fence = cell["cell_type"] == "markdown" and any(
            _FENCE.match(line) for line in text.splitlines()
        )
        if not has_fence:
            if label is None:
                plain.append(cell)
                kept |= {line.strip() for line in text.splitlines()}
            elif cell["cell_type"] == "code":
                solutions[label]["code"].append(text)
            else:
                solutions[label]["text"] += text.splitlines()
            continue
        fenced.append(i)
        closing = None  # the fence of a directive whose options are being skipped
        for line in text.splitlines():
            m = _FENCE.match(line)
            if closing is not None:
                if line.strip() and set(line.strip()) == {closing}:
                    closing = None
                if label is not None:
                    solutions[label]["text"].append(line)
                continue
            if m:
                closing = m[1][0]
                if m[2] == "solution-start":
                    label = m[3]
                    solutions[label] = {"code": [], "text": [line]}
                else:
                    solutions[label]["text"].append(line)
                    label = None
                continue
            if label is None:
                kept.add(line.strip())
            else:
                solutions[label]["text"].append(line)
    assert label is None, f"the solution of {label} is never closed"
    return kept, solutions, plain, fenced


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def scaffolds(nb) -> dict[str, list[dict]]:
    """label -> the scaffold cells of that exercise in a student notebook."""
    out: dict[str, list[dict]] = {}
    for cell in nb["cells"]:
        m = re.match(r"# Exercise (\S+?):? ", text_of(cell))
        if cell["cell_type"] == "code" and m:
            out.setdefault(m[1], []).append(cell)
    return out


def exercise_labels(nb) -> set[str]:
    labels = set()
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            labels |= set(
                re.findall(
                    r"^[`:]{3,}\s*\{exercise\}[^\n]*\n(?:[^\n]*\n)*?\s*:label:\s*(\S+)",
                    text_of(cell),
                    re.M,
                )
            )
    return labels


# ---------------------------------------------------------------------------------------
# (a) The fixtures: the scaffolds exactly
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example():
    nb = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    student_nb, report = student.student_edition(nb, EXAMPLE.name)
    return nb, student_nb, report


EXPECTED = {
    "ex-fx-func": '''# Exercise ex-fx-func: fill in the ..., then run this cell.
def noise_std(sched, t: int, scale: float = 1.0) -> float:
    """The standard deviation of the noise at step t, times ``scale``.

    sched: a Schedule; t: an integer step, 1 <= t <= T.
    """
    ...


dl.exercises.check("ex-fx-func", noise_std)''',
    "ex-fx-value": """# Exercise ex-fx-value: fill in the ..., then run this cell.
abar_T = ...  # your answer
dl.exercises.check("ex-fx-value", abar_T)""",
    "ex-fx-two": """# Exercise ex-fx-two: fill in the ..., then run this cell.
def posterior_ratio(s, t=2, *, eps=0.0):
    ...


first_close = ...  # your answer
dl.exercises.check("ex-fx-two", posterior_ratio, first_close)""",
    "ex-fx-free": """# Exercise ex-fx-free has no automatic check.
# Write your answer in a markdown cell below (and code cells if it needs any).""",
}


@pytest.mark.parametrize("label", sorted(EXPECTED))
def test_fixture_scaffold_is_exact(example, label):
    _, student_nb, report = example
    (cell,) = scaffolds(student_nb)[label]
    assert text_of(cell) == EXPECTED[label]
    assert cell["metadata"] == {"tags": ["nbval-skip", "exercise"]}
    assert cell["outputs"] == [] and cell["execution_count"] is None


def test_fixture_cells_in_order(example):
    """The statements stay, each followed by its scaffold; the solutions' cells are gone."""
    _, student_nb, report = example
    ids = [c["id"] for c in student_nb["cells"]]
    assert ids == [
        "intro",
        "setup",
        "ex1",
        "exercise-ex-fx-func",
        "ex2",
        "exercise-ex-fx-value",
        "between",
        "ex3",
        "exercise-ex-fx-two",
        "ex3-end",
        "exercise-ex-fx-free",
        "outro",
    ]
    by_id = {c["id"]: text_of(c) for c in student_nb["cells"]}
    # the end directive's cell keeps the next statement only
    assert by_id["ex2"].startswith("```{exercise} A number\n")
    assert by_id["ex3-end"].startswith("```{exercise} A question without a check\n")
    assert by_id["ex1"].endswith("noise_std)`.\n```")
    assert [(e.label, e.names) for e in report.exercises] == [
        ("ex-fx-func", ["noise_std"]),
        ("ex-fx-value", ["abar_T"]),
        ("ex-fx-two", ["posterior_ratio", "first_close"]),
        ("ex-fx-free", []),
    ]
    assert report.errors == [] and report.warnings == []


def test_no_check_is_reported(tmp_path, capsys):
    assert student.main(["--out", str(tmp_path), str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "ex-fx-free: no check in its solution" in out
    assert "ex-fx-func: scaffold for noise_std (function)" in out


def test_what_would_break_is_reported(tmp_path, capsys):
    """A later cell that uses a name only a solution binds, or shows a number only a
    solution glues, would fail in the student edition: status 1. A name the solution
    merely rebinds is a warning."""
    broken = FIXTURES / "student_broken.ipynb"
    assert student.main(["--out", str(tmp_path), str(broken)]) == 1
    _, report = student.student_edition(json.loads(broken.read_text()), broken.name)
    errors = "\n".join(report.errors)
    assert "'helper', which only the solution of 'ex-fx-broken' defines" in errors
    assert "'fx_only_in_solution' is not glued" in errors
    assert len(report.errors) == 2
    (warning,) = report.warnings
    assert "uses 'x', which the solution of 'ex-fx-broken' rebinds" in warning


def _notebook(cells):
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _md(i, text):
    return {"cell_type": "markdown", "id": i, "metadata": {}, "source": text}


def _code(i, text):
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": i,
        "metadata": {},
        "outputs": [],
        "source": text,
    }


def test_long_lines_are_wrapped():
    """A long signature or check line is wrapped as ruff would, within 88 columns."""
    start = "```{solution-start} ex-fx-long\n```"
    nb = _notebook(
        [
            _md("a", "```{exercise} Long\n:label: ex-fx-long\n```\n\n" + start),
            _code(
                "b",
                "def a_rather_long_function_name(schedule, step, data_points, "
                "generator=None, dtype=torch.float64):\n    return 1\n\n\n"
                "another_rather_long_answer_name = 2\n"
                'assert dl.exercises.check("ex-fx-long", a_rather_long_function_name, '
                "another_rather_long_answer_name)",
            ),
            _md("c", "```{solution-end}\n```"),
        ]
    )
    student_nb, report = student.student_edition(nb)
    (cell,) = scaffolds(student_nb)["ex-fx-long"]
    text = text_of(cell)
    assert max(len(line) for line in text.splitlines()) <= 88
    assert "def a_rather_long_function_name(\n    schedule," in text
    assert "dl.exercises.check(\n" in text
    tree = ast.parse(text)
    assert [type(s).__name__ for s in tree.body] == ["FunctionDef", "Assign", "Expr"]
    assert report.errors == []


def test_malformed_solutions_are_errors():
    """A solution never closed, a check of another label, or a check with an expression
    in place of a name cannot be turned into a student edition silently."""
    open_only = _notebook(
        [_md("a", "```{exercise} E\n:label: ex-a\n```\n```{solution-start} ex-a\n```")]
    )
    assert any(
        "never closed" in e for e in student.student_edition(open_only)[1].errors
    )
    for check, needle in [
        ('assert dl.exercises.check("ex-b", x)', "checks 'ex-b'"),
        ('assert dl.exercises.check("ex-a", x + 1)', "bare names"),
    ]:
        nb = _notebook(
            [
                _md(
                    "a",
                    "```{exercise} E\n:label: ex-a\n```\n```{solution-start} ex-a\n```",
                ),
                _code("b", "x = 1\n" + check),
                _md("c", "```{solution-end}\n```"),
            ]
        )
        errors = student.student_edition(nb)[1].errors
        assert any(needle in e for e in errors), errors
    plain = _notebook([_md("a", "```{solution} ex-a\nThe answer.\n```")])
    assert any(
        "{solution} directive" in e for e in student.student_edition(plain)[1].errors
    )


@pytest.mark.parametrize(
    "code, needed",
    [
        ("x = x + 1", {"x"}),
        ("for i in range(3):\n    print(i, y)", {"range", "print", "y"}),
        ("def f(a, b=c):\n    return a + g + h\n\n\nh = 1", {"c", "g"}),
        ("z = [k * w for k in ks]", {"w", "ks"}),
        ("with open(p) as fh:\n    q = fh.read()\nprint(q)", {"open", "p", "print"}),
        ("if c:\n    m = 1\nelse:\n    m = 2\nprint(m)", {"c", "print"}),
        ("f = lambda u: u + v", {"v"}),
    ],
)
def test_names_a_cell_needs(code, needed):
    """The names a kept cell reads before binding them: those a solution must not be the
    only one to define."""
    assert student.needs(code) == needed


# ---------------------------------------------------------------------------------------
# (b) Every chapter (and the fixture): no solution survives
# ---------------------------------------------------------------------------------------

SOURCES = CHAPTERS + [EXAMPLE]


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """The student edition of every chapter and of the fixture, written twice."""
    first = tmp_path_factory.mktemp("student")
    second = tmp_path_factory.mktemp("student-again")
    reports = student.write_edition(SOURCES, first)
    student.write_edition(SOURCES, second)
    return first, second, {r.name: r for r in reports}


def _pair(edition, path):
    out = edition[0]
    source = json.loads(path.read_text(encoding="utf-8"))
    result = json.loads((out / path.name).read_text(encoding="utf-8"))
    return source, result


def test_every_chapter_is_written(edition):
    assert CHAPTERS, "no chapters found"
    assert sorted(p.name for p in edition[0].glob("*.ipynb")) == sorted(
        p.name for p in SOURCES
    )


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_same_bytes_twice(edition, path):
    first, second, _ = edition
    assert (first / path.name).read_bytes() == (second / path.name).read_bytes()
    # and a third run into the same folder changes nothing
    before = (first / path.name).read_bytes()
    student.write_edition([path], first / "again")
    assert (first / "again" / path.name).read_bytes() == before


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_student_edition_would_run(edition, path):
    """No name, glued number or scaffold default that only a solution defines is used by
    what the student edition keeps (the tool's own analysis; nbval runs it for real)."""
    report = edition[2][path.name]
    assert report.errors == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_no_directive_left(edition, path):
    _, result = _pair(edition, path)
    for cell in result["cells"]:
        text = text_of(cell)
        assert "solution-start" not in text and "solution-end" not in text
        assert not re.search(r"\{solution\}", text)
        assert not cell.get("metadata", {}).get("jupyter", {}).get("source_hidden")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_no_solution_line_left(edition, path):
    """No line of a solution's code or prose is in the student notebook, except lines the
    chapter also has outside its solutions (e.g. ``plt.show()``), trivial lines (blank,
    lone brackets) and the lines of that exercise's scaffold (a signature, a docstring)."""
    source, result = _pair(edition, path)
    kept, solutions, _, _ = scan(source)
    student_lines = {
        line.strip() for cell in result["cells"] for line in text_of(cell).splitlines()
    }
    by_label = scaffolds(result)
    for label, sol in solutions.items():
        allowed = kept | {
            line.strip()
            for cell in by_label.get(label, [])
            for line in text_of(cell).splitlines()
        }
        for line in sol["text"] + [
            ln for code in sol["code"] for ln in code.splitlines()
        ]:
            line = line.strip()
            if _TRIVIAL.match(line) or line in allowed:
                continue
            assert line not in student_lines, f"{label}: solution line left: {line!r}"
    # and every line of the student notebook is the chapter's, or a scaffold's
    scaffold_lines = {
        line.strip()
        for cells in by_label.values()
        for cell in cells
        for line in text_of(cell).splitlines()
    }
    extra = student_lines - kept - scaffold_lines - {""}
    assert not extra, f"lines from nowhere: {sorted(extra)[:5]}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_exercise_labels_kept(edition, path):
    source, result = _pair(edition, path)
    assert exercise_labels(result) == exercise_labels(source)
    _, solutions, _, _ = scan(source)
    assert set(solutions) <= exercise_labels(source)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_one_scaffold_per_solution(edition, path):
    """Each solution became exactly one scaffold cell, tagged nbval-skip, with no solution
    logic in it: only ``def`` with a docstring and ``...``, ``name = ...`` and the check
    line, which checks the names the solution's check line checked; or, for a solution
    without a check line, only comments."""
    source, result = _pair(edition, path)
    _, solutions, _, _ = scan(source)
    by_label = scaffolds(result)
    assert set(by_label) == set(solutions)
    n_skip = sum("nbval-skip" in tags(c) for c in source["cells"])
    assert sum("nbval-skip" in tags(c) for c in result["cells"]) == n_skip + len(
        solutions
    )
    for label, sol in solutions.items():
        (cell,) = by_label[label]
        assert {"nbval-skip", "exercise"} <= set(tags(cell))
        text = text_of(cell)
        checks = [
            m
            for code in sol["code"]
            for m in [_CHECK.match(line) for line in code.splitlines()]
            if m and m[1] == label
        ]
        tree = ast.parse(text)
        if not checks:
            assert tree.body == [], f"{label}: code in a scaffold without a check"
            continue
        answers = [a.strip() for a in checks[-1][2].split(",") if a.strip()]
        *defs, last = tree.body
        call = last.value
        assert ast.unparse(call.func) == "dl.exercises.check"
        assert [ast.literal_eval(call.args[0])] + [a.id for a in call.args[1:]] == [
            label
        ] + answers
        defined = []
        for stmt in defs:
            if isinstance(stmt, ast.FunctionDef):
                body = stmt.body
                first = body[0]
                if (
                    isinstance(first, ast.Expr)
                    and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)
                ):
                    body = body[1:]  # the docstring
                assert [ast.unparse(s) for s in body] == ["..."]
                defined.append(stmt.name)
            else:
                assert isinstance(stmt, ast.Assign) and ast.unparse(stmt.value) == "..."
                defined += [t.id for t in stmt.targets]
        assert defined == answers


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_other_cells_unchanged(edition, path):
    """Every cell wholly outside the solutions is in the student notebook, unchanged and
    in order; the only other cells are the scaffolds and what is left of the markdown
    cells that held a directive (lines of theirs, in order, and nothing else)."""
    source, result = _pair(edition, path)
    _, _, plain, fenced = scan(source)
    rest = [c for c in result["cells"] if "exercise" not in tags(c)]
    same = [c for c in rest if c in plain]
    assert same == plain
    leftovers = [c for c in rest if c not in plain]
    assert len(leftovers) <= len(fenced)
    fenced_lines = [
        text_of(source["cells"][i]).splitlines() for i in fenced
    ]  # the source cells the leftovers come from
    for cell in leftovers:
        assert cell["cell_type"] == "markdown"
        lines = text_of(cell).splitlines()
        assert any(all(line in src for line in lines) for src in fenced_lines), text_of(
            cell
        )[:200]
    assert result["metadata"] == source["metadata"]
    assert result["nbformat"] == source["nbformat"]
    ids = [c.get("id") for c in result["cells"]]
    assert len(ids) == len(set(ids))
