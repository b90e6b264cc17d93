#!/usr/bin/env python3
"""Check that a built Jupyter Book loads nothing from the network.

The book is meant to be read with no internet connection: MathJax, RequireJS
and the Jupyter-widgets HTML manager are served from local copies (see
``_vendor/README.md``).  This script scans every ``.html`` file under a built
book (default ``_build/html``) and fails if a page would fetch anything from a
remote (``http:``, ``https:``, protocol-relative ``//``, or other non-local)
URL when it is viewed:

* ``<script src=...>``;
* ``<link href=...>``, whatever its ``rel`` (a stylesheet, preload, icon,
  preconnect, ... is fetched; any other remote ``<link>`` is flagged too);
* every ``src``, ``srcset``, ``data`` or ``poster`` attribute, on any element
  (``<img>``, ``<iframe>``, ``<source>``, ``<video>``, ``<input>``, ...);
* a ``data-jupyter-widgets-cdn`` attribute (where the widget manager would
  fetch widget code from);
* any URL inside inline ``<script>`` code (the MathJax configuration, a
  RequireJS ``paths`` entry, a constant that a script may fetch later), quoted
  or not; the XML namespace names of SVG/MathML/XHTML (``http://www.w3.org/...``)
  are identifiers, never fetched, and are not counted;
* ``@import`` and ``url(...)`` in inline ``<style>`` blocks, in ``style``
  attributes and in the local stylesheets the pages link to (web fonts).

It also checks that every local file referenced by ``<script src>`` or a
fetched ``<link href>`` exists, and that no page loads the same script twice.

Ordinary links (``<a href="https://...">`` to papers) are fine and ignored.
Files under ``_static/`` and ``_sources/`` are not pages (the theme keeps
Jinja template fragments with an ``.html`` suffix there) and are skipped;
the stylesheets in ``_static/`` are checked through the pages that use them.

Usage::

    python tools/check_offline.py [BUILD_DIR]

Exit status: 0 if all pages are clean (prints "N pages checked, 0 remote
scripts"), 1 if a problem was found (each printed as ``file: problem``),
2 if BUILD_DIR holds no HTML.  Standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# <link rel=...> values that make the browser fetch the href.
FETCHING_LINK_RELS = {
    "stylesheet",
    "preload",
    "modulepreload",
    "prefetch",
    "preconnect",
    "dns-prefetch",
    "icon",
    "apple-touch-icon",
    "mask-icon",
    "manifest",
}
# Attributes whose URL is fetched when the element is shown (on any element).
EMBED_ATTRS = ("src", "srcset", "poster")
# ... and ``data`` on the elements where it is a URL.
DATA_URL_TAGS = {"object"}
# <script type=...> values whose body is JavaScript (or a MathJax 2 config).
JS_TYPES = {
    "",
    "text/javascript",
    "application/javascript",
    "module",
    "text/x-mathjax-config",
}
# Not pages: theme template fragments (Jinja macros) and copied sources.
SKIP_DIRS = {"_static", "_sources"}
LOCAL_SCHEMES = {"", "data", "blob", "about", "javascript", "mailto"}

URL_IN_CODE = re.compile(
    r"""(?:\b(?:https?|wss?|ftp):)//[^\s"'`<>)\]]+|(?<=["'`])//[a-z0-9][^\s"'`<>]*""",
    re.IGNORECASE,
)
# XML namespace names: written as URLs, never fetched.
XML_NAMESPACE = re.compile(
    r"^http://www\.w3\.org/(?:2000/svg|1999/xhtml|1999/xlink|1998/Math/MathML"
    r"|XML/1998/namespace|2000/xmlns/?)$"
)
CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
CSS_IMPORT = re.compile(r"""@import\s+(?:url\()?\s*["']?([^"')\s;]+)""", re.IGNORECASE)
CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+?)["']?\s*\)""", re.IGNORECASE)


def is_remote(url: str) -> bool:
    """True if loading ``url`` would leave the local site."""
    url = url.strip()
    if url.startswith("//"):
        return True
    scheme = urlsplit(url).scheme.lower()
    # A one-letter "scheme" would be a Windows drive letter, not a URL scheme.
    return len(scheme) > 1 and scheme not in LOCAL_SCHEMES


def local_target(page: Path, url: str, root: Path) -> Path | None:
    """The file a page-relative or site-absolute URL points to (None for data: etc.)."""
    parts = urlsplit(url.strip())
    if parts.scheme or not parts.path:
        return None
    path = unquote(parts.path)
    if path.startswith("/"):  # site-absolute: relative to the book's root
        return root / path.lstrip("/")
    return page.parent / path


class PageScanner(HTMLParser):
    """Collects the resources one HTML page loads."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []  # <script src>
        self.links: list[tuple[str, str]] = []  # (rel, href) of every <link>
        self.embeds: list[tuple[str, str]] = []  # (tag, url)
        self.widget_cdns: list[str] = []
        self.inline_js: list[str] = []
        self.inline_css: list[str] = []  # <style> blocks and style="..." attributes
        self._in: str | None = None  # "js" / "css" while inside such a block
        self._buf: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        if "data-jupyter-widgets-cdn" in a:
            self.widget_cdns.append(a["data-jupyter-widgets-cdn"])
        if a.get("style"):
            self.inline_css.append(a["style"])
        if tag == "script":
            if a.get("src"):
                self.scripts.append(a["src"])
            elif a.get("type", "").strip().lower() in JS_TYPES:
                self._in, self._buf = "js", []
        elif tag == "style":
            self._in, self._buf = "css", []
        elif tag == "link" and a.get("href"):
            rels = set(a.get("rel", "").lower().split())
            self.links.append((" ".join(sorted(rels)), a["href"]))
        if tag != "script":
            attrs_ = EMBED_ATTRS + (("data",) if tag in DATA_URL_TAGS else ())
            for attr in attrs_:
                value = a.get(attr, "")
                if not value:
                    continue
                if attr == "srcset":
                    for item in value.split(","):
                        if item.strip():
                            self.embeds.append((tag, item.split()[0]))
                else:
                    self.embeds.append((tag, value))

    def handle_data(self, data):
        if self._in:
            self._buf.append(data)

    def handle_endtag(self, tag):
        if self._in == "js" and tag == "script":
            self.inline_js.append("".join(self._buf))
            self._in = None
        elif self._in == "css" and tag == "style":
            self.inline_css.append("".join(self._buf))
            self._in = None


def css_problems(text: str) -> list[str]:
    """Remote URLs in a stylesheet's @import / url(...)."""
    text = CSS_COMMENT.sub("", text)
    found = CSS_IMPORT.findall(text) + CSS_URL.findall(text)
    return sorted({u for u in found if is_remote(u)})


def check_css_file(path: Path, root: Path, cache: dict[Path, list[str]]) -> list[str]:
    """Remote URLs used by a local stylesheet, following its local @imports."""
    path = path.resolve()
    if path in cache:
        return cache[path]
    cache[path] = []  # guards against @import cycles
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    problems = [f"{u} (in {path.name})" for u in css_problems(text)]
    for imported in CSS_IMPORT.findall(CSS_COMMENT.sub("", text)):
        target = local_target(path, imported, root)
        if target is not None and target.is_file():
            problems += check_css_file(target, root, cache)
    cache[path] = problems
    return problems


def check_page(page: Path, root: Path, css_cache: dict[Path, list[str]]) -> list[str]:
    """All problems found on one page, as human-readable strings."""
    scanner = PageScanner()
    scanner.feed(page.read_text(encoding="utf-8", errors="replace"))
    scanner.close()
    problems: list[str] = []

    seen: set[str] = set()
    for src in scanner.scripts:
        if is_remote(src):
            problems.append(f"remote <script src>: {src}")
            continue
        target = local_target(page, src, root)
        if target is not None and not target.is_file():
            problems.append(f"missing local script: {src}")
        key = urlsplit(src).path
        if key in seen:
            problems.append(f"script loaded twice: {src}")
        seen.add(key)

    for rel, href in scanner.links:
        if is_remote(href):
            problems.append(f'remote <link rel="{rel}">: {href}')
            continue
        if not set(rel.split()) & FETCHING_LINK_RELS:
            continue  # a local rel="index"/"search"/"next": a link, not a resource
        target = local_target(page, href, root)
        if target is None:
            continue
        if not target.is_file():
            problems.append(f'missing local <link rel="{rel}">: {href}')
        elif "stylesheet" in rel.split():
            problems += [
                f"remote URL in stylesheet: {p}"
                for p in check_css_file(target, root, css_cache)
            ]

    for tag, url in scanner.embeds:
        if is_remote(url):
            problems.append(f"remote <{tag}>: {url}")

    for cdn in scanner.widget_cdns:
        if is_remote(cdn):
            problems.append(f"remote data-jupyter-widgets-cdn: {cdn}")

    for code in scanner.inline_js:
        for url in URL_IN_CODE.findall(code):
            if not XML_NAMESPACE.match(url):
                problems.append(f"remote URL in inline <script>: {url}")

    for css in scanner.inline_css:
        problems += [f"remote URL in inline style: {u}" for u in css_problems(css)]

    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fail if a built book loads scripts, styles or fonts from the network."
    )
    parser.add_argument(
        "build_dir",
        nargs="?",
        default="_build/html",
        help="folder holding the built HTML (default: _build/html)",
    )
    args = parser.parse_args(argv)

    root = Path(args.build_dir)
    pages = sorted(
        p
        for p in (root.rglob("*.html") if root.is_dir() else [])
        if not SKIP_DIRS & set(p.relative_to(root).parts[:-1])
    )
    if not pages:
        print(f"error: no .html files under {root}", file=sys.stderr)
        return 2

    css_cache: dict[Path, list[str]] = {}
    n_problems = 0
    for page in pages:
        for problem in check_page(page, root, css_cache):
            print(f"{page.relative_to(root).as_posix()}: {problem}")
            n_problems += 1

    if n_problems:
        print(f"{len(pages)} pages checked, {n_problems} problem(s) found")
        return 1
    print(f"{len(pages)} pages checked, 0 remote scripts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
