"""Tests of ddpm_lib.animation: an HTML animation player that works with no network.

References: the book's own offline checker ``tools/check_offline.py`` (run on a page holding the
player, and shown to reject matplotlib's unmodified player), and the PNG frames decoded here from
the page's base64 text: their size read from the PNG header bytes, their content with matplotlib's
image reader.
"""

from __future__ import annotations

import base64
import importlib.util
import io
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

from ddpm_lib.animation import BUTTON_SYMBOLS, chain_animation, offline_jshtml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FRAME = re.compile(r'frames\[(\d+)\] = "data:image/png;base64,(.*?)"', re.DOTALL)


def _check_offline():
    spec = importlib.util.spec_from_file_location("check_offline", ROOT / "tools" / "check_offline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _frames(html: str) -> list[bytes]:
    """The embedded PNG frames, in frame order (the JS string continues lines with a backslash)."""
    found = sorted((int(i), data) for i, data in FRAME.findall(html))
    assert [i for i, _ in found] == list(range(len(found)))
    return [base64.b64decode(data.replace("\\\n", "")) for _, data in found]


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk of a PNG file."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def _moving_chain(steps: int = 5, n: int = 40):
    """xs[t]: n points in a tight cluster at x = −2 + 0.9 t, y = 0, so each frame's t can be read off."""
    rng = np.random.default_rng(0)
    centres = np.array([[-2 + 0.9 * t, 0.0] for t in range(steps + 1)])
    return torch.from_numpy(centres[:, None, :] + 0.03 * rng.standard_normal((steps + 1, n, 2)))


def _page(tmp_path: Path, html: str) -> Path:
    page = tmp_path / "chapter.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>t</title></head><body>{html}</body></html>", encoding="utf-8")
    return page


def test_player_passes_the_offline_check_and_the_raw_one_does_not(tmp_path, capsys):
    """A page holding the player loads nothing from the web (tools/check_offline.py exits 0); the same
    page with matplotlib's own to_jshtml output is rejected for its Font Awesome stylesheet link."""
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
    """One embedded PNG per entry of ``steps``, each figsize × dpi pixels: (size, size + 0.2) inches."""
    size, dpi = 2.5, 40
    html = chain_animation(_moving_chain(), [5, 4, 3, 2, 1, 0], size=size, dpi=dpi)
    frames = _frames(html)
    assert len(frames) == 6 and html.count("data:image/png;base64,") == 6
    for png in frames:
        assert _png_size(png) == (round(size * dpi), round((size + 0.2) * dpi))


def test_frames_show_the_chain_in_the_order_of_steps():
    """Frame i shows xs[steps[i]]: the red cluster's column in each frame moves as the cluster does
    (x = −2 + 0.9 t), in the order given, including repeated and non-monotone steps."""
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
    assert columns[1] == pytest.approx(columns[4], abs=0.5)                   # steps[1] == steps[4]


def test_buttons_keep_their_actions_and_lose_their_icons():
    """All nine buttons of matplotlib's player are there with their click handlers, each drawn with
    its text symbol; no Font Awesome class or <link> is left."""
    html = chain_animation(_moving_chain(), [1, 0], dpi=30)
    actions = re.findall(r'onclick="anim\w+\.(\w+)\(\)"', html)
    assert actions == ["slower", "first_frame", "previous_frame", "reverse_animation", "pause_animation",
                       "play_animation", "next_frame", "last_frame", "faster"]
    assert "fa fa-" not in html and "<link" not in html.lower()
    assert not re.search(r"https?://", html)  # (a bare "http" can occur inside the base64 frames)
    for symbol in BUTTON_SYMBOLS.values():
        assert f'<span aria-hidden="true">{symbol}</span>' in html


def test_figure_is_closed_and_titles_are_used():
    """The animation's figure is closed (it must not also print as a still image), and a custom
    title list is accepted (one per step)."""
    before = plt.get_fignums()
    html = chain_animation(_moving_chain(), [3, 2, 1], titles=["a", "b", "c"], dpi=30)
    assert plt.get_fignums() == before
    assert len(_frames(html)) == 3


def test_default_mode_is_passed_through():
    """default_mode picks the checked repetition radio button of the player."""
    for mode in ("once", "loop", "reflect"):
        html = chain_animation(_moving_chain(), [1, 0], dpi=30, default_mode=mode)
        assert re.search(rf'value="{mode}" id="_anim_radio\d_\w+"\s+checked', html)


def test_unknown_icon_fails_loudly():
    """If matplotlib's player gains a button this module does not know, rendering fails with a clear
    message instead of leaving a blank button."""
    class Fake:
        def to_jshtml(self, fps=None, default_mode=None):
            return '<button><i class="fa fa-rocket"></i></button>'

    with pytest.raises(RuntimeError, match=r"unknown player icon 'fa fa-rocket'"):
        offline_jshtml(Fake())


@pytest.mark.parametrize("xs, steps, titles, match", [
    (torch.zeros(4, 10), [1], None, r"shape \(steps, n, 2\)"),
    (torch.zeros(4, 10, 3), [1], None, r"shape \(steps, n, 2\)"),
    (torch.zeros(4, 10, 2), [4], None, r"indices in 0…3"),
    (torch.zeros(4, 10, 2), [-1], None, r"indices in 0…3"),
    (torch.zeros(4, 10, 2), [], None, r"non-empty"),
    (torch.zeros(4, 10, 2), [3, 2], ["only one"], r"2 steps, 1 titles"),
])
def test_bad_inputs(xs, steps, titles, match):
    """Clear errors for points of the wrong shape, steps out of range and a wrong number of titles."""
    before = plt.get_fignums()
    with pytest.raises(ValueError, match=match):
        chain_animation(xs, steps, titles=titles)
    assert plt.get_fignums() == before
