"""The multi-panel helpers wrap onto rows of at most MAX_COLS panels."""

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch

from ddpm_lib.plotting import (
    DEFAULT_COLS,
    MAX_COLS,
    chain_strip,
    grid_shape,
    side_by_side,
    use_style,
)


@pytest.mark.parametrize(
    ("n", "ncols", "shape"),
    [(1, 2, (1, 1)), (2, 2, (1, 2)), (3, 2, (2, 2)), (10, 2, (5, 2)), (6, 3, (2, 3))],
)
def test_grid_shape(n, ncols, shape):
    assert grid_shape(n, ncols) == shape


@pytest.mark.parametrize(("n", "ncols"), [(0, 2), (5, 0), (5, MAX_COLS + 1)])
def test_grid_shape_rejects(n, ncols):
    with pytest.raises(ValueError):
        grid_shape(n, ncols)


def _visible_axes(fig):
    return [ax for ax in fig.axes if ax.axison]


def _columns(axes):
    return len({round(ax.get_position().x0, 3) for ax in axes})


def test_chain_strip_wraps():
    use_style()
    xs = torch.randn(11, 50, 2, generator=torch.Generator().manual_seed(0))
    steps = list(range(0, 11, 1))
    fig = chain_strip(xs, steps)
    shown = _visible_axes(fig)
    assert len(shown) == len(steps)
    assert _columns(shown) == DEFAULT_COLS
    assert [ax.get_title() for ax in shown] == [f"$t = {t}$" for t in steps]
    # Every panel keeps its size: the figure grows in height, not in width.
    width, height = fig.get_size_inches()
    assert width == pytest.approx(2.2 * DEFAULT_COLS)
    assert height == pytest.approx(2.5 * 6)
    plt.close(fig)


def test_side_by_side_wraps_and_colours():
    use_style()
    pts = torch.randn(4, 30, 2, generator=torch.Generator().manual_seed(1))
    panels = [(pts[0], "data"), (pts[1], "a"), (pts[2], "b", "grey"), (pts[3], "c")]
    fig = side_by_side(panels, ncols=3)
    shown = _visible_axes(fig)
    assert [ax.get_title() for ax in shown] == ["data", "a", "b", "c"]
    assert _columns(shown) == 3 and len(fig.axes) == 6
    colors = [tuple(ax.collections[0].get_facecolor()[0][:3]) for ax in shown]
    data, sample, grey = (
        matplotlib.colors.to_rgb(c) for c in ("#1f4e79", "#c0504d", "grey")
    )
    assert colors == [pytest.approx(c) for c in (data, sample, grey, sample)]
    plt.close(fig)
