"""Animations that play in the rendered book with no network (chapter 4).

matplotlib's ``Animation.to_jshtml`` writes a self-contained player: every frame is
an embedded PNG and the controls are inline JavaScript, so it needs no Python kernel.
It has one remote dependency: its buttons are Font Awesome icons, styled by a
``<link>`` to a stylesheet on a CDN. Offline the link fails and the buttons are blank,
and ``tools/check_offline.py`` rejects the page. :func:`offline_jshtml` removes the link
and draws the buttons with plain Unicode symbols instead.
"""

from __future__ import annotations

import re

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation

from .plotting import LIM, SAMPLE_COLOR, scatter

#: The Font Awesome classes of matplotlib's player buttons, and the text drawn instead.
#: U+FE0E asks for the text (not emoji) form of the two triangles.
BUTTON_SYMBOLS = {
    "fa fa-minus": "\u2212",                           # slower: −
    "fa fa-fast-backward": "\u21e4",                   # first frame: ⇤
    "fa fa-step-backward": "\u2039",                   # previous frame: ‹
    "fa fa-play fa-flip-horizontal": "\u25c0\ufe0e",   # play backwards: ◀
    "fa fa-pause": "\u2016",                           # pause: ‖
    "fa fa-play": "\u25b6\ufe0e",                      # play: ▶
    "fa fa-step-forward": "\u203a",                    # next frame: ›
    "fa fa-fast-forward": "\u21e5",                    # last frame: ⇥
    "fa fa-plus": "+",                                 # faster: +
}

_ICON = re.compile(r'<i class="([^"]*)"></i>')
_LINK = re.compile(r"<link\b[^>]*>", re.IGNORECASE)


def offline_jshtml(anim: animation.Animation, dpi: float = 72, fps: float | None = None,
                   default_mode: str = "once") -> str:
    """``anim.to_jshtml()`` rendered at ``dpi``, without the CDN stylesheet and with text buttons.

    The frames are PNGs of ``figsize × dpi`` pixels; keep both small, since every
    frame is embedded in the page. ``default_mode`` is "once", "loop" or "reflect".
    """
    with mpl.rc_context({"savefig.dpi": dpi}):
        html = anim.to_jshtml(fps=fps, default_mode=default_mode)
    html = _LINK.sub("", html)

    def to_text(match: re.Match) -> str:
        cls = match.group(1)
        if cls not in BUTTON_SYMBOLS:
            # A new matplotlib with a new button: fail loudly rather than leave a blank one.
            raise RuntimeError(f"unknown player icon {cls!r}; add it to ddpm_lib.animation.BUTTON_SYMBOLS")
        return f'<span aria-hidden="true">{BUTTON_SYMBOLS[cls]}</span>'

    return _ICON.sub(to_text, html)


def chain_animation(xs, steps, titles=None, color: str = SAMPLE_COLOR, lim=LIM, size: float = 3.3,
                    dpi: float = 72, fps: float = 7, default_mode: str = "once") -> str:
    """An HTML player of points moving along a chain, one frame per entry of ``steps``.   (chapter 4)

    Args:
        xs: points along the chain, shape (S, n, 2); ``xs[t]`` is drawn for each t in ``steps``
            (e.g. the trajectory of :func:`ddpm_lib.sampling.ddpm_sample`, where entry t is x_t).
        steps: the indices to show, in the order they are played (e.g. T, …, 0).
        titles: one title per frame; default "$t = {t}$".
    Returns:
        the player as HTML (show it with ``IPython.display.HTML``). The figure is closed,
        so it is not also shown as a still image.
    """
    pts = xs.detach().cpu().numpy() if isinstance(xs, torch.Tensor) else np.asarray(xs)
    if pts.ndim != 3 or pts.shape[2] != 2:
        raise ValueError(f"xs must have shape (steps, n, 2), got {pts.shape}")
    steps = [int(t) for t in steps]
    if not steps or min(steps) < 0 or max(steps) >= len(pts):
        raise ValueError(f"steps must be a non-empty list of indices in 0…{len(pts) - 1}, got {steps}")
    titles = [f"$t = {t}$" for t in steps] if titles is None else list(titles)
    if len(titles) != len(steps):
        raise ValueError(f"need one title per step: {len(steps)} steps, {len(titles)} titles")

    fig, ax = plt.subplots(figsize=(size, size + 0.2))
    try:
        scatter(ax, pts[steps[0]], titles[0], color=color, s=2.5, lim=lim)
        cloud = ax.collections[0]
        fig.tight_layout()

        def show(i):
            cloud.set_offsets(pts[steps[i]])
            ax.set_title(titles[i])
            return (cloud,)

        anim = animation.FuncAnimation(fig, show, frames=len(steps), interval=1000 / fps, blit=False)
        return offline_jshtml(anim, dpi=dpi, fps=fps, default_mode=default_mode)
    finally:
        plt.close(fig)
