"""Tests of ddpm_lib.animation: an HTML animation player that works with no network.

References: the book's own offline checker ``tools/check_offline.py`` (run on a page
holding the player, and shown to reject matplotlib's own ``to_jshtml`` player), and the
PNG frames decoded here from the page's JSON block: their size read from the PNG header
bytes, their content with matplotlib's image reader.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
import struct
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib import animation  # noqa: E402

from ddpm_lib.animation import chain_animation  # noqa: E402
from ddpm_lib.frames import BUTTONS, PLAYER_CLASS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = re.compile(
    r'<script type="application/json" class="ddpm-player-data">(.*?)</script>',
    re.DOTALL,
)


def _check_offline():
    spec = importlib.util.spec_from_file_location(
        "check_offline", ROOT / "tools" / "check_offline.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data(html: str) -> dict:
    """The player's JSON block: choices, frames (data URIs) and captions."""
    (block,) = DATA.findall(html)
    return json.loads(block)


def _frames(html: str) -> list[bytes]:
    """The embedded PNG frames, in frame order."""
    data = _data(html)
    (key,) = data["choices"]
    prefix = "data:image/png;base64,"
    assert all(uri.startswith(prefix) for uri in data["frames"][key])
    return [base64.b64decode(uri[len(prefix) :]) for uri in data["frames"][key]]


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk of a PNG file."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def _moving_chain(steps: int = 5, n: int = 40):
    """xs[t]: n points in a tight cluster at x = −2 + 0.9 t, y = 0, so each frame's t
    can be read off."""
    rng = np.random.default_rng(0)
    centres = np.array([[-2 + 0.9 * t, 0.0] for t in range(steps + 1)])
    return torch.from_numpy(
        centres[:, None, :] + 0.03 * rng.standard_normal((steps + 1, n, 2))
    )


def _page(tmp_path: Path, html: str) -> Path:
    page = tmp_path / "chapter.html"
    page.write_text(
        f"<!DOCTYPE html><html><head><title>t</title></head><body>{html}</body></html>",
        encoding="utf-8",
    )
    return page


def test_player_passes_the_offline_check_and_the_raw_one_does_not(tmp_path, capsys):
    """A page holding the player loads nothing from the web (tools/check_offline.py
    exits 0); the same page with matplotlib's own to_jshtml output is rejected for its
    Font Awesome stylesheet link."""
    checker = _check_offline()
    ours = tmp_path / "ours"
    ours.mkdir()
    _page(ours, chain_animation(_moving_chain(), [5, 4, 3], dpi=30))
    assert checker.main([str(ours)]) == 0

    raw = tmp_path / "raw"
    raw.mkdir()
    fig, ax = plt.subplots(figsize=(2, 2))
    anim = animation.FuncAnimation(fig, lambda i: (), frames=2)
    with matplotlib.rc_context({"savefig.dpi": 30}):
        _page(raw, anim.to_jshtml())
    plt.close(fig)
    assert checker.main([str(raw)]) == 1
    assert "font-awesome" in capsys.readouterr().out


def test_one_frame_per_step_of_the_requested_size():
    """One embedded PNG per entry of ``steps``, each figsize × dpi pixels: (size, size +
    0.2) inches."""
    size, dpi = 2.5, 40
    html = chain_animation(_moving_chain(), [5, 4, 3, 2, 1, 0], size=size, dpi=dpi)
    frames = _frames(html)
    # six frames in the player's list, and the first one again as the image shown before
    # any script runs
    assert len(frames) == 6 and html.count("data:image/png;base64,") == 7
    for png in frames:
        assert _png_size(png) == (round(size * dpi), round((size + 0.2) * dpi))


def test_frames_show_the_chain_in_the_order_of_steps():
    """Frame i shows xs[steps[i]]: the red cluster's column in each frame moves as the
    cluster does (x = −2 + 0.9 t), in the order given, including repeated and
    non-monotone steps."""
    steps = [5, 2, 4, 0, 2]
    frames = _frames(chain_animation(_moving_chain(), steps, dpi=60))
    columns = []
    for png in frames:
        img = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
        red = (img[..., 0] - img[..., 1] > 0.15) & (img[..., 0] - img[..., 2] > 0.15)
        assert red.sum() > 5
        columns.append(np.nonzero(red)[1].mean())
    # the column is an increasing linear function of the cluster's x = −2 + 0.9 t
    xs = np.array([-2 + 0.9 * t for t in steps])
    slope, intercept = np.polyfit(xs, columns, 1)
    assert slope > 0
    assert np.max(np.abs(np.array(columns) - (slope * xs + intercept))) < 2.0  # pixels
    assert columns[1] == pytest.approx(columns[4], abs=0.5)  # steps[1] == steps[4]


def test_player_follows_the_book_contract():
    """The player sits in a ``ddpm-player`` element with one image, one range input
    spanning the frames, a readout showing the first caption, and every play button (a
    text symbol, no icon font, no <link>, no remote URL)."""
    html = chain_animation(_moving_chain(), [3, 1, 0], dpi=30)
    assert html.startswith(f'<div class="{PLAYER_CLASS}"') and html.rstrip().endswith(
        "</div>"
    )
    assert html.count("<img ") == 1
    assert re.search(r'<input type="range" min="0" max="2" step="1" value="0"', html)
    assert re.search(r'class="ddpm-player-readout"[^>]*>t = 3</output>', html)
    assert _data(html)["captions"][""] == ["t = 3", "t = 1", "t = 0"]
    actions = re.findall(r'data-action="(\w+)"', html)
    assert actions == [action for action, _, _ in BUTTONS]
    for _, symbol, label in BUTTONS:
        assert f'aria-label="{label}">{symbol}</button>' in html
    assert "fa fa-" not in html and "<link" not in html.lower()
    assert not re.search(
        r"https?://", html
    )  # (a bare "http" can occur inside the base64 frames)


def test_figure_is_closed_and_titles_are_used():
    """The animation's figure is closed (it must not also print as a still image), and a
    custom title list is accepted (one per step) and drawn: two frames of the same
    points with different titles differ."""
    before = plt.get_fignums()
    xs = _moving_chain()
    html = chain_animation(
        xs, [3, 3, 1], titles=["a", "b", "c"], captions=["x", "y", "z"], dpi=30
    )
    assert plt.get_fignums() == before
    frames = _frames(html)
    assert len(frames) == 3 and frames[0] != frames[1]
    assert _data(html)["captions"][""] == ["x", "y", "z"]


def test_default_mode_is_passed_through():
    """default_mode picks the selected repetition mode of the player."""
    for mode in ("once", "loop", "reflect"):
        html = chain_animation(_moving_chain(), [1, 0], dpi=30, default_mode=mode)
        assert re.search(rf'<option value="{mode}" selected>', html)
        assert len(re.findall(r"<option value=\"\w+\" selected>", html)) == 1


def test_default_size_reads_on_a_phone():
    """By default a frame is at least 400 pixels wide, so that shrunk to a 390 px phone
    column the image keeps its scale near 1 (the title stays readable)."""
    (png, *_) = _frames(chain_animation(_moving_chain(), [1, 0]))
    assert _png_size(png)[0] >= 400


@pytest.mark.parametrize(
    "xs, steps, titles, match",
    [
        (torch.zeros(4, 10), [1], None, r"shape \(steps, n, 2\)"),
        (torch.zeros(4, 10, 3), [1], None, r"shape \(steps, n, 2\)"),
        (torch.zeros(4, 10, 2), [4], None, r"indices in 0…3"),
        (torch.zeros(4, 10, 2), [-1], None, r"indices in 0…3"),
        (torch.zeros(4, 10, 2), [], None, r"non-empty"),
        (torch.zeros(4, 10, 2), [3, 2], ["only one"], r"2 steps, 1 titles"),
    ],
)
def test_bad_inputs(xs, steps, titles, match):
    """Clear errors for points of the wrong shape, steps out of range and a wrong number
    of titles."""
    before = plt.get_fignums()
    with pytest.raises(ValueError, match=match):
        chain_animation(xs, steps, titles=titles)
    assert plt.get_fignums() == before
