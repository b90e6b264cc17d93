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
