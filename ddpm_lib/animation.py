"""Animations that play in the rendered book with no network (chapter 4).

:func:`chain_animation` draws the frames of a chain once, embeds them in the page as
PNGs and plays them with the book's frame player (:mod:`ddpm_lib.frames`): a slider, a
readout and buttons in plain HTML and JavaScript, inside an element of class
``ddpm-player``. It needs no Python kernel, loads nothing from the network (no icon
font: the buttons are Unicode symbols), and its controls wrap on a phone screen.
(matplotlib's own ``Animation.to_jshtml`` player links a stylesheet on a CDN for its
button icons and its button row does not wrap.)
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .frames import figure_frames, frame_player
from .plotting import LIM, SAMPLE_COLOR, scatter


def chain_animation(
    xs,
    steps,
    titles=None,
    color: str = SAMPLE_COLOR,
    lim=LIM,
    size: float = 4.8,
    dpi: float = 90,
    fps: float = 7,
    default_mode: str = "once",
    captions=None,
    alt: str | None = None,
) -> str:
    """An HTML player of points moving along a chain, one frame per entry of ``steps``.
    (chapter 4)

    The frames are drawn here, embedded as PNGs and played by
    :func:`ddpm_lib.frames.frame_player`: a range slider, a readout, play/step/speed
    buttons and a repetition menu, all inside an element of class ``ddpm-player``, in
    plain HTML and JavaScript (no kernel, no network, no icon font). The controls wrap
    on a narrow screen and the image shrinks with the text column.

    Args:
        xs: points along the chain, shape (S, n, 2); ``xs[t]`` is drawn for each t in
            ``steps`` (e.g. the trajectory of :func:`ddpm_lib.sampling.ddpm_sample`,
            where entry t is x_t).
        steps: the indices to show, in the order they are played (e.g. T, …, 0).
        titles: one title per frame (drawn in the image); default "$t = {t}$".
        size, dpi: each frame is (size, size + 0.2) inches at ``dpi``: 432 × 450 pixels
            by default, large enough for the title to read on a phone once the image is
            scaled to the screen.
        captions: the readout beside the slider, one per frame; default "t = {t}".
        alt: the image's alternative text; default a sentence naming the steps shown.
    Returns:
        the player as HTML (show it with ``IPython.display.HTML``). The figure is
        closed, so it is not also shown as a still image.
    """
    pts = xs.detach().cpu().numpy() if isinstance(xs, torch.Tensor) else np.asarray(xs)
    if pts.ndim != 3 or pts.shape[2] != 2:
        raise ValueError(f"xs must have shape (steps, n, 2), got {pts.shape}")
    steps = [int(t) for t in steps]
    if not steps or min(steps) < 0 or max(steps) >= len(pts):
        raise ValueError(
            f"steps must be a non-empty list of indices in 0…{len(pts) - 1}, got {steps}"
        )
    titles = [f"$t = {t}$" for t in steps] if titles is None else list(titles)
    if len(titles) != len(steps):
        raise ValueError(
            f"need one title per step: {len(steps)} steps, {len(titles)} titles"
        )
    captions = (
        [f"t = {t}" for t in steps] if captions is None else [str(c) for c in captions]
    )
    if len(captions) != len(steps):
        raise ValueError(
            f"need one caption per step: {len(steps)} steps, {len(captions)} captions"
        )
    if alt is None:
        alt = (
            f"Scatter plot of {pts.shape[1]} points along the chain, one frame per step from "
            f"t = {steps[0]} to t = {steps[-1]}; the slider picks the step."
        )

    fig, ax = plt.subplots(figsize=(size, size + 0.2))
    try:
        scatter(ax, pts[steps[0]], titles[0], color=color, s=3.0, lim=lim)
        ax.title.set_fontsize(12)
        cloud = ax.collections[0]
        fig.tight_layout()

        def show(i):
            cloud.set_offsets(pts[steps[i]])
            ax.set_title(titles[i])

        frames = figure_frames(
            fig,
            show,
            range(len(steps)),
            dpi=dpi,
            artists=(cloud, ax.title),
            close=False,
        )
    finally:
        plt.close(fig)
    return frame_player(
        frames,
        captions,
        alt=alt,
        slider_label="frame",
        play=True,
        fps=fps,
        default_mode=default_mode,
    )
