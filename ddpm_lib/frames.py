"""Interactive figures that need no Python kernel: precomputed frames and a slider
(chapters 1, 2, 4).

A slider built with ipywidgets calls back into Python, so in the rendered book, where no
kernel runs, it moves but the picture does not change. The player here draws every frame
in advance, stores each one in the page as an inline PNG, and switches between them with
a few lines of plain JavaScript driven by an ``<input type="range">``. The page loads
nothing from the network, and the same HTML works in the rendered book and in a trusted
notebook.

Contract kept by every player (a browser test relies on it): the controls sit inside an
element of class ``ddpm-player``; setting its range input to another value and
dispatching an ``input`` event changes the ``src`` of the ``img`` inside it and the text
of its readout (class ``ddpm-player-readout``).

Keep the pages light: a chapter should stay under about 2 MB. Frames are saved as PNGs
with a palette of at most ``colors`` colours, which makes a scatter plot 3-4 times
smaller than a full-colour PNG at no visible cost.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

#: The class of the element that holds a player's image and controls.
PLAYER_CLASS = "ddpm-player"

#: Repetition modes of a player with a play button (as in matplotlib's HTML animations).
PLAY_MODES = ("once", "loop", "reflect")

# One stylesheet for every player, scoped by class (a page may repeat it: harmless).
# The controls wrap, so that they fit a 390 px phone screen; the image shrinks with the
# column.
_STYLE = """<style>
.ddpm-player { margin: 0.5em 0 1em; max-width: 100%; }
.ddpm-player img { display: block; max-width: 100%; height: auto; }
.ddpm-player-controls { display: flex; flex-wrap: wrap; align-items: center;
  gap: 0.3em 0.6em; margin-top: 0.3em; font-size: 0.95em; }
.ddpm-player-controls label { display: inline-flex; align-items: center; gap: 0.4em; }
.ddpm-player-controls .ddpm-player-slider { flex: 1 1 12em; min-width: 9em; }
.ddpm-player-slider input { flex: 1 1 auto; width: 100%; min-width: 6em; }
.ddpm-player-controls button { min-width: 2.2em; min-height: 2.2em; padding: 0 0.4em; }
.ddpm-player-buttons { display: inline-flex; flex-wrap: wrap; gap: 0.25em; }
.ddpm-player-readout { font-variant-numeric: tabular-nums; min-width: 6em; }
</style>"""

# The player's code. It finds its own container (document.currentScript works both in
# the built page and in JupyterLab, which re-inserts the scripts of trusted outputs),
# reads the frames from the JSON block next to it, and wires the controls.
_SCRIPT = """<script>
(function () {
  var me = document.currentScript;
  var root = (me && me.closest(".ddpm-player")) || document.getElementById("%(uid)s");
  if (!root || root.dataset.ready) { return; }
  root.dataset.ready = "1";
  var data = JSON.parse(root.querySelector(".ddpm-player-data").textContent);
  var img = root.querySelector("img");
  var slider = root.querySelector("input[type=range]");
  var readout = root.querySelector(".ddpm-player-readout");
  var choice = root.querySelector("select.ddpm-player-choice");
  var mode = root.querySelector("select.ddpm-player-mode");
  var n = data.captions[data.choices[0]].length;
  var timer = null, direction = 0, interval = data.interval;
  function show() {
    var key = choice ? choice.value : data.choices[0];
    var i = parseInt(slider.value, 10);
    img.src = data.frames[key][i];
    readout.textContent = data.captions[key][i];
  }
  function go(i) { slider.value = Math.max(0, Math.min(n - 1, i)); show(); }
  function stop() { if (timer) { clearInterval(timer); } timer = null; direction = 0; }
  function tick() {
    var i = parseInt(slider.value, 10) + direction;
    if (i >= 0 && i < n) { go(i); return; }
    var m = mode ? mode.value : "once";
    if (m === "loop") { go(direction > 0 ? 0 : n - 1); }
    else if (m === "reflect") { direction = -direction; go(i + 2 * direction); }
    else { stop(); }
  }
  function play(d) {
    stop();
    var once = !mode || mode.value === "once", i = parseInt(slider.value, 10);
    if (d > 0 && i === n - 1 && once) { go(0); }
    if (d < 0 && i === 0 && once) { go(n - 1); }
    direction = d;
    timer = setInterval(tick, interval);
  }
  slider.addEventListener("input", show);
  slider.addEventListener("change", show);
  if (choice) {
    choice.addEventListener("change", show);
    choice.addEventListener("input", show);
  }
  function step(k) { stop(); go(parseInt(slider.value, 10) + k); }
  function speed(f) { interval *= f; if (direction) { play(direction); } }
  var actions = {
    first: function () { stop(); go(0); },
    previous: function () { step(-1); },
    reverse: function () { play(-1); },
    pause: stop,
    play: function () { play(1); },
    next: function () { step(1); },
    last: function () { stop(); go(n - 1); },
    slower: function () { speed(1 / 0.7); },
    faster: function () { speed(0.7); }
  };
  root.querySelectorAll("button[data-action]").forEach(function (b) {
    b.addEventListener("click", actions[b.dataset.action]);
  });
  show();
})();
</script>"""

#: The buttons of a player with ``play=True``: (action, symbol, label). Plain Unicode
#: symbols, so no icon font is needed; U+FE0E asks for the text (not emoji) form of the
#: triangles.
BUTTONS = (
    ("first", "\u21e4", "first frame"),
    ("previous", "\u2039", "previous frame"),
    ("reverse", "\u25c0\ufe0e", "play backwards"),
    ("pause", "\u2016", "pause"),
    ("play", "\u25b6\ufe0e", "play"),
    ("next", "\u203a", "next frame"),
    ("last", "\u21e5", "last frame"),
    ("slower", "\u2212", "slower"),
    ("faster", "+", "faster"),
)


def _encode(rgb: np.ndarray, colors: int | None) -> bytes:
    """PNG bytes of an (h, w, 3) uint8 image; with ``colors``, as a palette image of
    that many colours."""
    image = Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")
    if colors is not None:
        # Fast octree quantisation: a few dozen colours are plenty for a light scatter
        # plot.
        image = image.quantize(colors=colors, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    image.save(out, format="png")
    return out.getvalue()


def png_bytes(fig, dpi: float = 80, colors: int | None = 64) -> bytes:
    """The figure as PNG bytes at ``dpi``; with ``colors``, reduced to a palette of that
    many colours."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=fig.get_facecolor())
    rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return _encode(rgb, colors)


def figure_frames(
    fig,
    update: Callable,
    items: Iterable,
    dpi: float = 80,
    colors: int | None = 64,
    artists: Sequence = (),
    close: bool = True,
) -> list[bytes]:
    """Draw one frame per item: ``update(item)`` changes ``fig`` in place, then it is
    rendered as a PNG.

    Re-using one figure (moving points with ``set_offsets``, changing a title) is much
    faster than drawing a new figure per frame. If ``artists`` lists every artist that
    ``update`` changes (e.g. the scatter's collection and ``ax.title``), the rest of the
    figure is drawn once and only those are redrawn on top of it (blitting), which is
    several times faster again; ``update`` must then change nothing else. The figure is
    rendered with an Agg canvas at ``dpi`` and closed at the end unless ``close=False``,
    so a notebook does not also show it as a still image.
    """
    try:
        fig.set_dpi(dpi)
        canvas = FigureCanvasAgg(fig)
        for artist in artists:
            artist.set_animated(True)  # left out of the full draw: the background
        canvas.draw()
        background = canvas.copy_from_bbox(fig.bbox) if artists else None
        frames = []
        for item in items:
            update(item)
            if artists:
                canvas.restore_region(background)
                for artist in artists:
                    fig.draw_artist(artist)
            else:
                canvas.draw()
            frames.append(_encode(np.asarray(canvas.buffer_rgba())[..., :3], colors))
        return frames
    finally:
        for artist in artists:
            artist.set_animated(False)
        if close:
            plt.close(fig)


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, to be embedded in the page."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _as_groups(frames, captions) -> tuple[list[str], dict, dict]:
    """Normalise to one list of frames and one of captions per choice; check the shapes
    agree."""
    if isinstance(frames, Mapping):
        if not isinstance(captions, Mapping) or list(captions) != list(frames):
            raise ValueError(
                "with frames given per choice, captions must be a dict with the same keys, in order"
            )
        choices = [str(k) for k in frames]
        frames = {str(k): list(v) for k, v in frames.items()}
        captions = {str(k): [str(c) for c in v] for k, v in captions.items()}
    else:
        if isinstance(captions, Mapping):
            raise ValueError("captions per choice need frames per choice")
        choices = [""]
        frames, captions = {"": list(frames)}, {"": [str(c) for c in captions]}
    n = len(frames[choices[0]])
    if n == 0:
        raise ValueError("a player needs at least one frame")
    for key in choices:
        if len(frames[key]) != n or len(captions[key]) != n:
            raise ValueError(
                f"every choice needs the same number of frames and captions: {n} frames for "
                f"{choices[0]!r}, {len(frames[key])} frames and {len(captions[key])} captions "
                f"for {key!r}"
            )
        for png in frames[key]:
            if (
                not isinstance(png, bytes | bytearray)
                or not bytes(png[:8]) == b"\x89PNG\r\n\x1a\n"
            ):
                raise ValueError(
                    "frames must be PNG bytes (see png_bytes and figure_frames)"
                )
    return choices, frames, captions


def frame_player(
    frames: Sequence[bytes] | Mapping[str, Sequence[bytes]],
    captions: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    alt: str,
    slider_label: str = "t",
    choice_label: str = "",
    start: int = 0,
    start_choice: str | None = None,
    play: bool = False,
    fps: float = 7,
    default_mode: str = "once",
) -> str:
    """An HTML player of precomputed frames, switched by a range slider (and a drop-down
    menu).

    Args:
        frames: PNG bytes, one per slider position; or a dict choice -> such a list, all
            of the same length, and the page shows a drop-down menu of the choices (e.g.
            schedules).
        captions: the readout text for each frame, in the same shape as ``frames``.
        alt: the image's alternative text (what the picture shows, for screen readers).
        slider_label, choice_label: the visible labels of the slider and of the menu.
        start, start_choice: the frame (index) and choice shown first.
        play: add play/pause, step and speed buttons and a repetition menu (animations).
        fps, default_mode: frames per second when playing, and "once", "loop" or
        "reflect".
    Returns:
        the player as one HTML string (show it with ``IPython.display.HTML``). Every
        frame is embedded; nothing is loaded from the network.
    """
    choices, frames, captions = _as_groups(frames, captions)
    n = len(frames[choices[0]])
    if not 0 <= start < n:
        raise ValueError(f"start must be a frame index in 0…{n - 1}, got {start}")
    multi = choices != [""]
    if start_choice is None:
        start_choice = choices[0]
    if start_choice not in frames:
        raise ValueError(f"start_choice {start_choice!r} is not one of {choices}")
    if default_mode not in PLAY_MODES:
        raise ValueError(
            f"default_mode must be one of {PLAY_MODES}, got {default_mode!r}"
        )
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")

    uris = {key: [data_uri(bytes(png)) for png in frames[key]] for key in choices}
    uid = (
        "ddpm-player-"
        + hashlib.sha1(
            "".join(uris[k][i] for k in choices for i in (0, -1)).encode()
            + "".join(captions[start_choice]).encode()
        ).hexdigest()[:12]
    )
    payload = json.dumps(
        dict(choices=choices, frames=uris, captions=captions, interval=1000 / fps)
    )
    payload = payload.replace("</", "<\\/")  # never close the <script> element early
    esc = html.escape
    parts = [
        f'<div class="{PLAYER_CLASS}" id="{uid}">',
        _STYLE,
        f'<img src="{uris[start_choice][start]}" alt="{esc(alt)}">',
        '<div class="ddpm-player-controls">',
    ]
    if multi:
        options = "".join(
            f'<option value="{esc(k)}"{" selected" if k == start_choice else ""}>{esc(k)}</option>'
            for k in choices
        )
        parts.append(
            f'<label>{esc(choice_label)} <select class="ddpm-player-choice">{options}</select></label>'
        )
    parts.append(
        f'<label class="ddpm-player-slider">{esc(slider_label)} <input type="range" min="0" '
        f'max="{n - 1}" step="1" value="{start}" aria-label="{esc(slider_label or "frame")}"></label>'
    )
    parts.append(
        f'<output class="ddpm-player-readout" aria-live="polite">'
        f"{esc(captions[start_choice][start])}</output>"
    )
    if play:
        buttons = "".join(
            f'<button type="button" data-action="{a}" title="{label}" aria-label="{label}">'
            f"{symbol}</button>"
            for a, symbol, label in BUTTONS
        )
        parts.append(f'<span class="ddpm-player-buttons">{buttons}</span>')
        modes = "".join(
            f'<option value="{m}"{" selected" if m == default_mode else ""}>{m}</option>'
            for m in PLAY_MODES
        )
        parts.append(
            f'<label>repeat <select class="ddpm-player-mode">{modes}</select></label>'
        )
    parts.append("</div>")
    parts.append(
        f'<script type="application/json" class="ddpm-player-data">{payload}</script>'
    )
    parts.append(_SCRIPT % {"uid": uid})
    parts.append("</div>")
    return "\n".join(parts)
