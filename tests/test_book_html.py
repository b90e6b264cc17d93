"""The book's Sphinx extension (tools/book_html.py): the lighter figures."""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import book_html  # noqa: E402


def _plot(path, transparent=False):
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(4, 3), dpi=150)
    ax.scatter(*rng.normal(size=(2, 3000)), s=2, alpha=0.3)
    ax.imshow(rng.random((20, 20)), extent=(1, 3, 1, 3), cmap="magma")
    fig.savefig(path, transparent=transparent)
    plt.close(fig)


def test_palette_png_shrinks_a_plot_and_keeps_its_look(tmp_path):
    path = tmp_path / "fig.png"
    _plot(path)
    before, size = (
        np.asarray(Image.open(path).convert("RGB"), float),
        path.stat().st_size,
    )
    assert book_html.palette_png(path)
    assert path.stat().st_size < 0.8 * size
    with Image.open(path) as image:
        assert image.mode == "P"
        after = np.asarray(image.convert("RGB"), float)
    assert after.shape == before.shape
    # at most a few levels of 255 off on average, nowhere a different colour
    assert np.abs(after - before).mean() < 2 and np.abs(after - before).max() < 64
    assert not book_html.palette_png(path)  # a palette image is left as it is


def test_palette_png_leaves_a_see_through_figure_alone(tmp_path):
    path = tmp_path / "fig.png"
    _plot(path, transparent=True)
    data = path.read_bytes()
    assert not book_html.palette_png(path)
    assert path.read_bytes() == data
