"""ddpm_lib.exercises: the framework, and its link to the chapters (every check belongs to an
exercise of a chapter, every chapter has at least two checked exercises, and each chapter's
solutions end with their check). The checks themselves: tests/test_exercises_ch*.py."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from ddpm_lib import exercises
from ddpm_lib.exercises import CHECKS, Verdict, check

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LABEL = re.compile(r"```\{exercise\}[^\n]*\n:label: (\S+)")
CHECK_LINE = re.compile(r'^assert dl\.exercises\.check\("([^"]+)"', re.M)


def _exercises(path):
    """(labels of the chapter's exercises, labels checked by an assert in its code cells)."""
    cells = json.loads(path.read_text())["cells"]
    text = lambda kind: "\n".join(
        "".join(c["source"]) for c in cells if c["cell_type"] == kind
    )
    return LABEL.findall(text("markdown")), CHECK_LINE.findall(text("code"))


def test_a_right_and_a_wrong_answer():
    def std(alpha_bar, delta):
        return math.sqrt(alpha_bar * delta**2 + 1 - alpha_bar)

    good = check("ex-ch2-gauss", std)
    assert isinstance(good, Verdict) and good and str(good).startswith("✓ right")
    bad = check("ex-ch2-gauss", lambda ab, d: std(ab, d) ** 2)
    assert not bad and str(bad).startswith("✗ not yet") and "square root" in str(bad)


def test_unfinished_and_failing_answers_are_not_right():
    assert "replace the `...`" in check("ex-ch2-gauss", ...).message
    failing = check("ex-ch2-gauss", lambda ab, d: 1 / 0)
    assert not failing and "ZeroDivisionError" in failing.message


def test_an_answer_that_changes_its_inputs_is_judged_on_its_value():
    def in_place(sigma_bar, t):
        sigma_bar *= 1.0  # changes the caller's tensor, were it not a copy
        sigma_bar[t - 1] = 0.0
        return sigma_bar[t]

    assert check("ex-ch2-ve", in_place)


def test_the_wrong_number_or_form_of_answers_is_named():
    two = check("ex-ch2-gauss", lambda ab, d: 1.0, lambda ab, d: 1.0)
    assert not two and "takes 1 answer(s)" in two.message
    vector = check("ex-ch2-ve", lambda sigma_bar, t: sigma_bar[t] * torch.ones(2))
    assert not vector and "give one number" in vector.message
    assert "shape (2,)" in vector.message


def test_a_float32_answer_is_told_to_use_float64(monkeypatch):
    third = lambda answer: (exercises.close(answer(3.0), 1 / 3, rtol=1e-12), "off.")
    monkeypatch.setitem(CHECKS, "ex-test-third", third)
    f32 = check("ex-test-third", lambda x: 1 / torch.tensor(x))  # float32
    assert not f32 and "came back in float32" in f32.message
    f64 = check("ex-test-third", lambda x: 1 / torch.tensor(x, dtype=torch.float64))
    assert f64
    wrong64 = check("ex-test-third", lambda x: torch.tensor(x, dtype=torch.float64))
    assert not wrong64 and "float32" not in wrong64.message


def test_an_unknown_label_names_the_known_ones():
    with pytest.raises(ValueError, match="ex-ch2-gauss"):
        check("ex-ch9-nothing", 1.0)


def test_a_label_cannot_have_two_checks():
    with pytest.raises(ValueError, match="two checks"):
        exercises.exercise("ex-ch2-gauss")(lambda answer: (True, ""))


def test_close_and_first_mistake():
    assert exercises.close(1.0, 1.0 + 1e-9) and not exercises.close(1.0, 1.1)
    assert not exercises.close([1.0, 2.0], [1.0])  # shapes differ
    assert not exercises.close(float("nan"), float("nan"))
    assert exercises.first_mistake(4.0, {"a": 3.0, "b": 4.0}) == "b"
    assert exercises.first_mistake(5.0, {"a": 3.0}) is None


def test_every_check_belongs_to_an_exercise_of_a_chapter():
    labels = {label for path in CHAPTERS for label in _exercises(path)[0]}
    assert set(CHECKS) <= labels, sorted(set(CHECKS) - labels)


def test_every_check_line_in_a_chapter_has_a_check():
    for path in CHAPTERS:
        labels, checked = _exercises(path)
        assert set(checked) <= set(labels) & set(CHECKS), (path.name, checked)
        assert len(checked) == len(set(checked)), (path.name, checked)


def test_every_chapter_has_two_checked_exercises():
    for path in CHAPTERS:
        labels, checked = _exercises(path)
        assert len(checked) >= 2, (path.name, labels, checked)
