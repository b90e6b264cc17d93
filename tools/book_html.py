"""A small Sphinx extension with the book's own fixes to the generated HTML.

It is loaded through ``sphinx.local_extensions`` in ``_config.yml`` and does four
things:

* **Every image needs alt text.** A figure produced by a notebook cell gets its
  alt text from the cell's metadata (``"mystnb": {"image": {"alt": "..."}}``).
  Without it the HTML would show the image's file name to a screen reader, so
  the build warns (``-W`` turns the warning into a failed build) with the page
  and line of the cell.
* **Unique element ids.** sphinx-exercise gives every exercise's and solution's
  body the same id (``exercise-content`` / ``solution-content``); here each one
  gets its own, made from the id of the exercise or solution around it.
* **No Font Awesome script.** pydata-sphinx-theme loads ``fontawesome.js``
  (1.5 MB of icon data) on every page, only to swap its ``<i class="fa-...">``
  icons for inline SVG. The theme's stylesheet already draws the same icons
  with the Font Awesome web font (about 150 kB, fetched only when an icon is
  shown), so the script tag is removed from the written pages.
* **Lighter figures.** matplotlib writes full-colour PNGs; a plot has few colours,
  so every PNG in ``_images/`` is stored with a palette of at most 256 colours
  when that makes it at least 20 % smaller (typically 3-4 times smaller; the
  difference is not visible), to keep each chapter within the page-weight budget
  of the browser test.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from docutils import nodes
from PIL import Image
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Alt text that is really a file name or a path, not a description.
PATH_LIKE = re.compile(r"^\S*[/\\]\S*$|^\S+\.(png|jpe?g|gif|svg|webp|pdf)$", re.I)
#: The <script> tag of pydata-sphinx-theme's Font Awesome bundle.
FONTAWESOME_SCRIPT = re.compile(
    r'[ \t]*<script\b[^>]*\bsrc="[^"]*_static/scripts/fontawesome\.js[^"]*"[^>]*>'
    r"\s*</script>[ \t]*\n?"
)
SHARED_IDS = {"exercise-content", "solution-content"}


def bad_alt(alt: str | None) -> str | None:
    """Why ``alt`` is not a usable description of an image (None if it is)."""
    text = (alt or "").strip()
    if not text:
        return "no alt text"
    if PATH_LIKE.match(text):
        return f"alt text is a file name ({text!r})"
    return None


def check_alt_text(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Warn about every image of the page without a real description."""
    for image in doctree.findall(nodes.image):
        problem = bad_alt(image.get("alt"))
        if problem:
            name = PurePosixPath(image.get("uri", "")).name
            logger.warning(
                f"image {name} has {problem}: describe it in the cell's metadata "
                '("mystnb": {"image": {"alt": "..."}}) or the :alt: option',
                location=image,
                type="ddpm",
                subtype="alt",
            )


def unique_exercise_ids(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give each exercise/solution body an id of its own."""
    used: set[str] = set()
    for section in doctree.findall(nodes.section):
        shared = [i for i in section["ids"] if i in SHARED_IDS]
        if not shared:
            continue
        parent_ids = section.parent.get("ids", []) if section.parent else []
        base = f"{parent_ids[0]}-content" if parent_ids else shared[0]
        new_id, n = base, 1
        while new_id in used or new_id in doctree.ids:
            n += 1
            new_id = f"{base}-{n}"
        used.add(new_id)
        section["ids"] = [new_id if i in SHARED_IDS else i for i in section["ids"]]
        section["classes"] = list(dict.fromkeys(section["classes"] + shared))


def drop_fontawesome_script(app: Sphinx, exception: Exception | None) -> None:
    """Remove the Font Awesome script tag from every written HTML page."""
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        new = FONTAWESOME_SCRIPT.sub("", text)
        if new != text:
            page.write_text(new, encoding="utf-8")


def palette_png(path: Path, keep_below: float = 0.8) -> bool:
    """Store the PNG at ``path`` with a 256-colour palette if that makes it smaller
    than ``keep_below`` times its size. Returns whether the file was rewritten."""
    with Image.open(path) as image:
        if image.mode == "P":
            return False
        if "A" in image.getbands() and image.getchannel("A").getextrema()[0] < 255:
            return False  # a see-through figure keeps its alpha channel
        rgb = image.convert("RGB")
    small = rgb.quantize(
        256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    tmp = path.with_suffix(".palette.png")
    small.save(tmp, "PNG", optimize=True)
    if tmp.stat().st_size < keep_below * path.stat().st_size:
        tmp.replace(path)
        return True
    tmp.unlink()
    return False


def lighter_figures(app: Sphinx, exception: Exception | None) -> None:
    """Palette PNGs for every figure of the built book (:func:`palette_png`)."""
    if exception is not None or app.builder.format != "html":
        return
    for path in sorted((Path(app.outdir) / "_images").glob("*.png")):
        palette_png(path)


def setup(app: Sphinx) -> dict:
    app.connect("doctree-resolved", check_alt_text)
    app.connect("doctree-resolved", unique_exercise_ids)
    app.connect("build-finished", drop_fontawesome_script)
    app.connect("build-finished", lighter_figures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
