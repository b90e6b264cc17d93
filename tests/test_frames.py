"""Tests of ddpm_lib.frames: precomputed frames played by a slider, with no kernel and
no network.

References: PNG bytes decoded with Pillow and matplotlib's image reader (independent of
the encoder's code path), a full redraw of the figure compared with the blitted frame,
the book's offline checker ``tools/check_offline.py``, and, when Chromium is installed,
a headless browser that moves the slider and reads the image back.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from ddpm_lib.frames import (  # noqa: E402
    PLAYER_CLASS,
    data_uri,
    figure_frames,
    frame_player,
    png_bytes,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = re.compile(
    r'<script type="application/json" class="ddpm-player-data">(.*?)</script>',
    re.DOTALL,
)


def _data(html: str) -> dict:
    (block,) = DATA.findall(html)
    return json.loads(block)


def _decode(uri: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return base64.b64decode(uri[len(prefix) :])


def _rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _dot_figure():
    """A figure with one red dot whose x position and title an update can change."""
    fig, ax = plt.subplots(figsize=(2.0, 1.5))
    (dot,) = ax.plot([0.0], [0.0], "o", color="red", ms=8)
    ax.set(xlim=(-1, 11), ylim=(-1, 1), title="x = 0")
    fig.tight_layout()

    def update(x):
        dot.set_xdata([x])
        ax.set_title(f"x = {x}")

    return fig, ax, dot, update


def _red_column(png: bytes) -> float:
    img = _rgb(png)
    red = (img[..., 0] - img[..., 1] > 100) & (img[..., 0] - img[..., 2] > 100)
    assert red.sum() > 5
    return np.nonzero(red)[1].mean()


def _players(n_frames: int = 3, choices=("a", "b")):
    """Small frames per choice: frame i of choice k is a flat grey of level 40 k + 10
    i."""
    frames, captions = {}, {}
    for k, name in enumerate(choices):
        frames[name], captions[name] = [], []
        for i in range(n_frames):
            buf = io.BytesIO()
            Image.new("RGB", (4, 3), (40 * k + 10 * i,) * 3).save(buf, format="png")
            frames[name].append(buf.getvalue())
            captions[name].append(f"{name}: t = {i}")
    return frames, captions


def test_figure_frames_one_png_per_item_of_the_figure_size():
    """One PNG per item, figsize × dpi pixels, in palette mode with at most ``colors``
    colours; the figure is closed afterwards."""
    fig, _, _, update = _dot_figure()
    before = set(plt.get_fignums()) - {fig.number}
    frames = figure_frames(fig, update, [0, 5, 10], dpi=50, colors=16)
    assert set(plt.get_fignums()) == before
    assert len(frames) == 3
    for png in frames:
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.size == (100, 75) and image.mode == "P"
        assert len(image.getcolors()) <= 16


def test_frames_follow_the_updates_and_blitting_draws_the_same_picture():
    """The dot's column grows with x, by the same number of pixels per unit; and
    redrawing only the changed artists on a saved background gives the picture a full
    redraw gives."""
    fig, ax, dot, update = _dot_figure()
    full = figure_frames(fig, update, [0, 5, 10], dpi=60, colors=None, close=False)
    blit = figure_frames(
        fig, update, [0, 5, 10], dpi=60, colors=None, artists=(dot, ax.title)
    )
    cols = [_red_column(png) for png in full]
    assert cols[0] < cols[1] < cols[2]
    assert cols[2] - cols[1] == pytest.approx(cols[1] - cols[0], abs=1.0)
    for a, b in zip(full, blit):
        diff = np.abs(_rgb(a) - _rgb(b))
        assert (
            diff > 40
        ).mean() < 0.002  # antialiased edges may differ by a shade, nothing more
    # a blitted title is redrawn too: frames that differ only by their title differ
    fig, ax, _, _ = _dot_figure()
    titled = figure_frames(
        fig, ax.set_title, ["x = 1", "x = 7"], dpi=60, colors=None, artists=(ax.title,)
    )
    assert titled[0] != titled[1]


def test_palette_frames_are_smaller_and_look_the_same():
    """A scatter plot saved with a 64-colour palette is at least twice smaller than in
    full colour, and no pixel moves by more than a few levels on average."""
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.scatter(
        *rng.standard_normal((2, 2000)), s=2, alpha=0.6, color="#1f4e79", linewidths=0
    )
    full, small = png_bytes(fig, dpi=80, colors=None), png_bytes(fig, dpi=80, colors=64)
    plt.close(fig)
    assert len(small) < len(full) / 2
    assert np.abs(_rgb(full) - _rgb(small)).mean() < 3


def test_player_html_holds_the_controls_and_every_frame():
    """Container class, image showing the start frame, one range input over the frames,
    a menu of the choices, a readout with the start caption, and the frames and captions
    in the JSON block."""
    frames, captions = _players()
    html = frame_player(
        frames,
        captions,
        alt="A grey square.",
        slider_label="t",
        choice_label="schedule",
        start=1,
        start_choice="b",
    )
    assert html.startswith(f'<div class="{PLAYER_CLASS}"')
    assert re.search(r'<img src="([^"]+)" alt="A grey square.">', html).group(
        1
    ) == data_uri(frames["b"][1])
    assert re.findall(r'<input type="range"[^>]*>', html) == [
        '<input type="range" min="0" max="2" step="1" value="1" aria-label="t">'
    ]
    assert '<option value="a">a</option><option value="b" selected>b</option>' in html
    assert re.search(r'class="ddpm-player-readout"[^>]*>b: t = 1</output>', html)
    data = _data(html)
    assert data["choices"] == ["a", "b"] and data["captions"] == captions
    for name in frames:
        assert [_decode(uri) for uri in data["frames"][name]] == frames[name]
    assert "<button" not in html  # no play buttons unless asked for


def test_player_without_choices_and_with_play_buttons():
    """A single list of frames gives no menu; ``play=True`` adds the buttons and the
    repetition menu."""
    frames, captions = _players(choices=("only",))
    html = frame_player(
        frames["only"], captions["only"], alt="x", play=True, default_mode="loop"
    )
    assert '<select class="ddpm-player-choice"' not in html
    assert _data(html)["choices"] == [""]
    assert '<option value="loop" selected>' in html and 'data-action="play"' in html


def test_player_loads_nothing_from_the_network(tmp_path):
    """No remote URL in the player, and a page holding it passes the book's offline
    check; text that would close the <script> element early is escaped."""
    spec = importlib.util.spec_from_file_location(
        "check_offline", ROOT / "tools" / "check_offline.py"
    )
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    frames, captions = _players()
    captions["a"][0] = "</script><b>"
    html = frame_player(frames, captions, alt="x", play=True)
    assert not re.search(r"https?://|//cdn|<link", html)
    assert (
        html.count("</script>") == 2
    )  # the JSON block and the code, nothing from the captions
    assert _data(html)["captions"]["a"][0] == "</script><b>"
    (tmp_path / "page.html").write_text(
        f"<!DOCTYPE html><html><body>{html}</body></html>", encoding="utf-8"
    )
    assert checker.main([str(tmp_path)]) == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(frames=[], captions=[]), "at least one frame"),
        (dict(frames=[b"\x89PNG\r\n\x1a\n"], captions=["a", "b"]), "same number"),
        (dict(frames=[b"GIF89a"], captions=["a"]), "PNG bytes"),
        (dict(frames={"a": [b"\x89PNG\r\n\x1a\n"]}, captions=["a"]), "same keys"),
        (
            dict(
                frames={"a": [b"\x89PNG\r\n\x1a\n"], "b": []},
                captions={"a": ["x"], "b": []},
            ),
            "same number",
        ),
        (dict(frames=[b"\x89PNG\r\n\x1a\n"], captions=["a"], start=1), "start must be"),
        (
            dict(frames=[b"\x89PNG\r\n\x1a\n"], captions=["a"], default_mode="bounce"),
            "default_mode",
        ),
        (
            dict(
                frames={"a": [b"\x89PNG\r\n\x1a\n"]},
                captions={"a": ["x"]},
                start_choice="z",
            ),
            "start_choice",
        ),
    ],
)
def test_bad_inputs(kwargs, match):
    """Clear errors for empty or mismatched frames and captions, non-PNG frames and bad
    start values."""
    with pytest.raises(ValueError, match=match):
        frame_player(alt="x", **kwargs)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed: the player's script is not run"
)
def test_slider_and_menu_switch_the_frame_in_a_browser(tmp_path):
    """In headless Chromium, setting the range input and dispatching ``input`` shows
    that frame and its caption; changing the menu shows the other choice's frame at the
    same slider position; the "first frame" and "next frame" buttons step through."""
    frames, captions = _players()
    html = frame_player(frames, captions, alt="x", choice_label="schedule", play=True)
    probe = """<script>
      var r = document.querySelector(".ddpm-player"), img = r.querySelector("img");
      var slider = r.querySelector("input[type=range]");
      var menu = r.querySelector("select.ddpm-player-choice");
      var out = r.querySelector(".ddpm-player-readout");
      var seen = [[img.src, out.textContent]];
      function note() { seen.push([img.src, out.textContent]); }
      slider.value = 2; slider.dispatchEvent(new Event("input")); note();
      menu.value = "b"; menu.dispatchEvent(new Event("change")); note();
      r.querySelector("button[data-action=first]").click(); note();
      r.querySelector("button[data-action=next]").click(); note();
      document.body.setAttribute("data-seen", JSON.stringify(seen));
    </script>"""
    page = tmp_path / "page.html"
    page.write_text(
        f"<!DOCTYPE html><html><body>{html}{probe}</body></html>", encoding="utf-8"
    )
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    seen = json.loads(
        re.search(r'data-seen="([^"]*)"', dom).group(1).replace("&quot;", '"')
    )
    assert seen == [
        [data_uri(frames["a"][0]), "a: t = 0"],
        [data_uri(frames["a"][2]), "a: t = 2"],
        [data_uri(frames["b"][2]), "b: t = 2"],
        [data_uri(frames["b"][0]), "b: t = 0"],
        [data_uri(frames["b"][1]), "b: t = 1"],
    ]
