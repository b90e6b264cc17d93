"""One look for every figure of the book."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch

#: Axis limits of every 2D scatter plot (standardised data live well inside).
LIM = (-3.2, 3.2)
DATA_COLOR, SAMPLE_COLOR = "#1f4e79", "#c0504d"


def use_style() -> None:
    """Apply the book's matplotlib style: light background, readable fonts, no top/right spines."""
    mpl.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 150, "figure.facecolor": "white", "axes.facecolor": "white",
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.25,
        "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "legend.frameon": False,
        "image.cmap": "viridis",
    })


def _xy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def scatter(ax, x, title: str = "", color: str = DATA_COLOR, s: float = 2.0, lim=LIM) -> None:
    """A 2D scatter with the book's fixed limits, equal aspect and labelled axes."""
    x = _xy(x)
    ax.scatter(x[:, 0], x[:, 1], s=s, color=color, alpha=0.6, linewidths=0)
    ax.set(xlim=lim, ylim=lim, aspect="equal", title=title, xlabel="$x^{(1)}$", ylabel="$x^{(2)}$")


def chain_strip(xs, steps, title_fmt: str = "$t = {t}$", color: str = DATA_COLOR, lim=LIM, size: float = 1.9,
                ncols: int = 5):
    """Scatter plots of points along a chain, ``ncols`` to a row; ``xs[t]`` is plotted for each t in ``steps``."""
    nrows = -(-len(steps) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.3) * nrows), sharex=True, sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(steps):]:
        ax.axis("off")
    for ax, t in zip(axes.flat, steps):
        scatter(ax, xs[t], title_fmt.format(t=t), color=color, s=1.0, lim=lim)
        ax.set(xlabel="", ylabel="", xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def side_by_side(panels, size: float = 3.2, lim=LIM):
    """Scatter plots side by side on the same axes: ``panels`` is a list of (points, title[, color])."""
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size + 0.3), sharex=True, sharey=True)
    for ax, panel in zip(np.atleast_1d(axes), panels):
        pts, title = panel[0], panel[1]
        color = panel[2] if len(panel) > 2 else (DATA_COLOR if ax is np.atleast_1d(axes)[0] else SAMPLE_COLOR)
        scatter(ax, pts, title, color=color, lim=lim)
    fig.tight_layout()
    return fig
