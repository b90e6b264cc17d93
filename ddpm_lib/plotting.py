"""One look for every figure of the book.

Multi-panel figures wrap onto several rows: ``DEFAULT_COLS`` panels to a row unless
a chapter asks for more, and never more than ``MAX_COLS``. A figure is shown at the
width of the text column, so on a phone (about 360 px) every extra panel in a row
makes its titles smaller; with two panels a row they stay about as large as small
print there, and the book's pages let a reader open any figure at full size.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch

#: Axis limits of every 2D scatter plot (standardised data live well inside).
LIM = (-3.2, 3.2)
DATA_COLOR, SAMPLE_COLOR = "#1f4e79", "#c0504d"
#: Panels per row of the multi-panel helpers unless a chapter asks for more.
DEFAULT_COLS = 2
#: Never more panels than this in one row (three still read on a laptop screen).
MAX_COLS = 3


def use_style() -> None:
    """Apply the book's matplotlib style.

    Light background, readable fonts, no top/right spines.
    """
    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "figure.facecolor": "white",
            "axes.facecolor": "white",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.25,
            "font.size": 10,
            "axes.titlesize": 10,
            "axes.labelsize": 10,
            "legend.frameon": False,
            "image.cmap": "viridis",
        }
    )


def _xy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def grid_shape(n: int, ncols: int = DEFAULT_COLS) -> tuple[int, int]:
    """(rows, columns) of a grid holding ``n`` panels, at most ``ncols`` to a row.

    ``ncols`` must lie between 1 and ``MAX_COLS``; a grid never has more columns
    than panels.
    """
    if n < 1:
        raise ValueError(f"a figure needs at least one panel, got {n}")
    if not 1 <= ncols <= MAX_COLS:
        raise ValueError(f"ncols must be between 1 and {MAX_COLS}, got {ncols}")
    ncols = min(ncols, n)
    return -(-n // ncols), ncols


def _panel_grid(n: int, ncols: int, width: float, height: float):
    """A figure with ``n`` panels sharing their axes; unused cells are hidden."""
    nrows, ncols = grid_shape(n, ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(width * ncols, height * nrows),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def scatter(
    ax, x, title: str = "", color: str = DATA_COLOR, s: float = 2.0, lim=LIM
) -> None:
    """A 2D scatter with the book's fixed limits, equal aspect and labelled axes."""
    x = _xy(x)
    ax.scatter(x[:, 0], x[:, 1], s=s, color=color, alpha=0.6, linewidths=0)
    ax.set(
        xlim=lim,
        ylim=lim,
        aspect="equal",
        title=title,
        xlabel="$x^{(1)}$",
        ylabel="$x^{(2)}$",
    )


def chain_strip(
    xs,
    steps,
    title_fmt: str = "$t = {t}$",
    color: str = DATA_COLOR,
    lim=LIM,
    size: float = 2.2,
    ncols: int = DEFAULT_COLS,
):
    """Scatter plots of points along a chain, ``ncols`` to a row.

    ``xs[t]`` is plotted for each t in ``steps``; the panels wrap onto as many rows
    as they need (see :func:`grid_shape`).
    """
    fig, axes = _panel_grid(len(steps), ncols, size, size + 0.3)
    for ax, t in zip(axes, steps):
        scatter(ax, xs[t], title_fmt.format(t=t), color=color, s=1.0, lim=lim)
        ax.set(xlabel="", ylabel="", xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def side_by_side(panels, size: float = 2.8, lim=LIM, ncols: int = DEFAULT_COLS):
    """Scatter plots on the same axes, ``ncols`` to a row.

    ``panels`` is a list of (points, title[, color]); without a color the first
    panel is drawn as data and the others as samples.
    """
    fig, axes = _panel_grid(len(panels), ncols, size, size + 0.3)
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        pts, title = panel[0], panel[1]
        default = DATA_COLOR if i == 0 else SAMPLE_COLOR
        color = panel[2] if len(panel) > 2 else default
        scatter(ax, pts, title, color=color, lim=lim)
    fig.tight_layout()
    return fig
