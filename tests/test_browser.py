"""The built book in a real browser (headless Chromium driven by Playwright).

Run it after the book is built (``make browser-test``; ``make test`` runs it after
``make book``). It serves ``_build/html`` (or ``$DDPM_BOOK_HTML``) on 127.0.0.1,
blocks and records every request for anything that is not on that server, and
opens every page at 1280 px and at 390 px (a phone). For every page it checks:

* **requests**   no request leaves the machine, and no local file is missing;
* **console**    no console error and no uncaught exception (while loading and
  while the dropdowns and players below are used);
* **raw TeX**    no TeX source in visible text, the ``<title>``, the sidebar,
  or alt/title/aria-label attributes (code blocks and outputs excepted);
* **typeset**    every formula was typeset by MathJax, without a MathJax error;
* **clipped**    no formula is cut off by a box that clips it, and a formula that
  scrolls sideways shows a visible cue (a shadow or fade drawn by the book's CSS),
  at 1280 px and at 390 px; the page itself never scrolls sideways on a phone;
* **dropdowns**  every solution dropdown opens and then closes when any part of
  its title bar is clicked (the bar, the link to the exercise, a formula, the
  chevron), and no other dropdown changes;
* **players**    every ``.ddpm-player``: moving its slider (and choosing another
  entry of its menus) changes the picture it shows; every control of the page
  sits inside a player; at 390 px every control is on the screen;
* **widgets**    no ipywidgets control in the static page (it would need a kernel:
  a control that does nothing);
* **alt text**   every image has a description: not empty, not a file name;
* **ids**        no element id is used twice;
* **weight**     the page and everything it loads stay within ``BUDGET_BYTES``
  gzipped (as a web server sends it) and ``RAW_BUDGET_BYTES`` uncompressed.

At the end it prints one line per page (formulas, clipped, requests, console
errors, page weight) and lists the display equations that are wider than the
column on a phone (they scroll, with the cue; breaking them over lines reads
better). The same checks run on small deliberately broken pages, one for each
kind of breakage, to show that each check fails when it should.

Chromium: ``$CHROMIUM``, else ``chromium`` on the PATH, else ``/usr/bin/chromium``
(Debian's package; Playwright's own browser download is not used). Without
Chromium or Playwright the test is skipped locally, and fails when ``$CI`` is set.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import os
import random
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from _chromium import CHROMIUM_ARGS as BASE_ARGS
from _chromium import find_chromium

ROOT = Path(__file__).resolve().parents[1]
BOOK = Path(os.environ.get("DDPM_BOOK_HTML", ROOT / "_build" / "html"))
#: Most a page may weigh: its HTML plus every file it loads, as a web server sends it
#: (gzip-compressed, the usual measure of page weight) ...
BUDGET_BYTES = 2_000_000
#: ... and as files read from disk, uncompressed (the book opened from a folder).
RAW_BUDGET_BYTES = 4_000_000
WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}
CHROMIUM_ARGS = [
    *BASE_ARGS,
    # Belt and braces: even a request that got past the route below finds no host.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
#: Pages that are not pages of the book: theme template fragments and copied sources.
SKIP_DIRS = {"_static", "_sources", "_images", "jupyter_execute", "reports"}


def _unavailable(reason: str):
    """Skip locally; in CI a missing browser is a failure, never a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"browser test cannot run in CI: {reason}", pytrace=False)
    pytest.skip(
        f"{reason} (the browser test needs Chromium and Playwright; see README)"
    )


# ---------------------------------------------------------------------------------
# A local web server that counts what it serves.
# ---------------------------------------------------------------------------------
class _Handler(http.server.SimpleHTTPRequestHandler):
    served: list[tuple[str, int]]

    def copyfile(self, source, outputfile):
        data = source.read()
        outputfile.write(data)
        self.served.append((self.path, len(data), len(gzip.compress(data, 6))))

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):  # quiet
        pass


class Server:
    """``root`` served on 127.0.0.1 in a thread.

    ``served`` lists (path, bytes, bytes gzipped) of every file sent.
    """

    def __init__(self, root: Path):
        self.served: list[tuple[str, int, int]] = []
        handler = functools.partial(
            type("H", (_Handler,), {"served": self.served}), directory=str(root)
        )
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------------
# What runs in the page.
# ---------------------------------------------------------------------------------
JS_WAIT_MATHJAX = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
    if (MathJax.typesetPromise) await MathJax.typesetPromise();
  }
  await document.fonts.ready;
  return true;
}"""

JS_RAW_TEX = r"""() => {
  const SKIP = 'script,style,noscript,template,pre,code,kbd,samp,textarea,' +
               'mjx-container,.highlight,.cell_input,#search-results .context';
  const TEX = /\\(?:[A-Za-z]{2,}|[()\[\]{}])|[_^]\{|\$[^$\n]*[\\^_][^$\n]*\$/;
  const hits = [];
  const seen = new Set();
  const add = (where, text) => {
    const key = where + ': ' + text.trim().replace(/\s+/g, ' ').slice(0, 90);
    if (!seen.has(key)) { seen.add(key); hits.push(key); }
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = walker.nextNode())) {
    const p = n.parentElement;
    if (!p || p.closest(SKIP)) continue;
    if (TEX.test(n.nodeValue)) {
      const where = p.closest('nav, .bd-sidebar-primary, .bd-sidebar-secondary, header')
        ? 'navigation' : (p.closest('h1,h2,h3,h4,h5,h6') ? 'heading' : 'text');
      add(where, n.nodeValue);
    }
  }
  if (TEX.test(document.title)) add('<title>', document.title);
  for (const el of document.querySelectorAll('[alt],[title],[aria-label]')) {
    if (el.closest(SKIP)) continue;
    for (const a of ['alt', 'title', 'aria-label']) {
      const v = el.getAttribute(a);
      if (v && TEX.test(v)) add(a + ' attribute', v);
    }
  }
  return hits;
}"""

JS_TYPESET = r"""() => {
  const bad = [];
  let n = 0;
  for (const el of document.querySelectorAll('span.math, div.math')) {
    n += 1;
    if (!el.querySelector('mjx-container')) {
      bad.push('not typeset: ' + el.textContent.trim().slice(0, 80));
    }
  }
  for (const e of document.querySelectorAll('mjx-merror')) {
    bad.push('MathJax error: ' + (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 80));
  }
  // An undefined command is drawn as its name in red (MathJax's noundefined).
  for (const e of document.querySelectorAll('mjx-container mjx-mtext[style*="red"]')) {
    const c = e.closest('mjx-container');
    let tex = '';
    try { tex = MathJax.startup.document.getMathItemsWithin(c)[0].math; } catch (err) {}
    bad.push('undefined TeX command (drawn in red): ' + tex.slice(0, 80));
  }
  const formulas = document.querySelectorAll('mjx-container').length;
  return {marked: n, formulas, bad};
}"""

# Every formula's box against every box around it that clips or scrolls.
JS_CLIPPED = r"""() => {
  const TOL = 3;   // px: the overhang of an italic letter is not a cut-off formula
  const source = (c) => {
    try {
      const items = MathJax.startup.document.getMathItemsWithin(c);
      if (items.length) return items[0].math.trim().replace(/\s+/g, ' ');
    } catch (e) {}
    return c.textContent.trim();
  };
  const label = (c) => {
    const div = c.closest('div.math');
    if (!div) return '';
    const no = div.querySelector('.eqno');
    return no ? no.textContent.replace(/[^\d.()]/g, '') : (div.id || '');
  };
  const hasCue = (el, cs) =>
    /inset/.test(cs.boxShadow) || /gradient/.test(cs.backgroundImage) ||
    (cs.maskImage && cs.maskImage !== 'none') ||
    (cs.webkitMaskImage && cs.webkitMaskImage !== 'none') || el.hasAttribute('data-scroll-cue');
  const out = {formulas: 0, clipped: [], wide_display: [], page_overflow: 0};
  for (const c of document.querySelectorAll('mjx-container')) {
    const m = c.querySelector(':scope > mjx-math') || c;
    let r = m.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;           // not displayed
    // A closed drawer (the sidebar on a phone) is not on the screen.
    if (c.checkVisibility && !c.checkVisibility({checkOpacity: true, checkVisibilityCSS: true,
                                                 opacityProperty: true, visibilityProperty: true})) continue;
    out.formulas += 1;
    const display = c.getAttribute('display') === 'true' || !!c.closest('div.math');
    const full = r.width;
    let problem = null;
    for (let el = m.parentElement; el && el !== document.documentElement; el = el.parentElement) {
      const cs = getComputedStyle(el);
      const clipsX = cs.overflowX !== 'visible', clipsY = cs.overflowY !== 'visible';
      if (!clipsX && !clipsY) continue;
      const a = el.getBoundingClientRect();
      const left = a.left + el.clientLeft, top = a.top + el.clientTop;
      const right = left + el.clientWidth, bottom = top + el.clientHeight;
      const overX = Math.max(r.right - right, left - r.left, 0);
      const overY = Math.max(r.bottom - bottom, top - r.top, 0);
      if (clipsX && overX > TOL) {
        const scrolls = cs.overflowX === 'auto' || cs.overflowX === 'scroll';
        if (!scrolls) { problem = `cut off by ${Math.round(overX)} px`; break; }
        if (!hasCue(el, cs)) { problem = `scrolls with no visible cue (${Math.round(overX)} px hidden)`; break; }
        if (display) out.wide_display.push({label: label(c), hidden: Math.round(overX), tex: source(c).slice(0, 70)});
        r = {left, right, top: r.top, bottom: r.bottom};         // what is seen of it is the box
      }
      if (clipsY && overY > TOL && !(cs.overflowY === 'auto' || cs.overflowY === 'scroll')) {
        problem = `cut off vertically by ${Math.round(overY)} px`; break;
      }
    }
    if (!problem && r.right > window.innerWidth + TOL) {
      problem = `runs ${Math.round(r.right - window.innerWidth)} px off the screen`;
    }
    if (problem) {
      out.clipped.push(`${display ? 'display' : 'inline'} formula ${label(c)} ` +
                       `(${Math.round(full)} px wide) ${problem}: ${source(c).slice(0, 60)}`);
    }
  }
  const doc = document.scrollingElement || document.documentElement;
  out.page_overflow = Math.max(0, doc.scrollWidth - window.innerWidth);
  out.culprits = [];
  if (out.page_overflow > TOL) {
    // The innermost elements that stick out of the screen and are not inside a box
    // that clips or scrolls them: what makes the page scroll sideways.
    const W = window.innerWidth + TOL;
    const contained = (el) => {
      for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        if (getComputedStyle(a).overflowX !== 'visible' && a.getBoundingClientRect().right <= W) return true;
      }
      return false;
    };
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right <= W) continue;
      if (el.checkVisibility && !el.checkVisibility({checkVisibilityCSS: true,
                                                     visibilityProperty: true})) continue;
      if (Array.from(el.children).some(ch => ch.getBoundingClientRect().right > W)) continue;
      if (contained(el)) continue;
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
      out.culprits.push(`${name} "${el.textContent.trim().slice(0, 40)}" ends at ${Math.round(r.right)} px`);
      if (out.culprits.length >= 5) break;
    }
  }
  return out;
}"""

JS_OPEN_ALL = """() => {
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  document.querySelectorAll('details').forEach(d => { d.open = true; });
}"""

JS_TOGGLE_STATES = """() => Array.from(document.querySelectorAll('.admonition.toggle'),
  e => e.classList.contains('toggle-hidden'))"""

JS_WIDGETS = """() => {
  const views = document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"], .jupyter-widgets, .widget-subarea, .lm-Widget');
  return views.length;
}"""

JS_CONTROLS = r"""(width) => {
  const CONTROL = 'input, select, textarea, button, [role=slider], [contenteditable=true]';
  // The theme's own buttons, and the search form of the search page.
  const THEME = '.toggle-button, .copybtn, .headerlink, form[role=search], ' +
                '.bd-search, #search-documentation, .bd-header-article, .prev-next-area';
  const article = document.querySelector('article.bd-article, article, main') || document.body;
  const outside = [], offscreen = [];
  for (const el of article.querySelectorAll(CONTROL)) {
    if (el.closest(THEME) || el.type === 'hidden') continue;
    const desc = el.tagName.toLowerCase() + (el.type ? `[type=${el.type}]` : '') +
                 (el.id ? '#' + el.id : '') +
                 (typeof el.className === 'string' && el.className.trim()
                  ? '.' + el.className.trim().split(/\s+/).join('.') : '') + (el.textContent.trim() ? ` "${el.textContent.trim().slice(0, 12)}"` : '');
    if (!el.closest('.ddpm-player')) { outside.push(desc); continue; }
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < -1 || r.right > width + 1) offscreen.push(`${desc} at ${Math.round(r.left)}..${Math.round(r.right)} px`);
  }
  return {outside, offscreen};
}"""

JS_PLAYER = """async (player) => {
  const problems = [];
  const srcs = () => Array.from(player.querySelectorAll('img'), i => i.getAttribute('src') || '').join('|');
  const settle = () => new Promise(r => setTimeout(r, 80));
  const ranges = player.querySelectorAll('input[type=range]');
  if (!player.querySelector('img')) problems.push('has no image');
  if (!ranges.length) problems.push('has no slider');
  ranges.forEach((range, i) => {
    const before = srcs(), old = range.value;
    const lo = range.min || '0', hi = range.max || '100';
    range.value = (range.value === hi) ? lo : hi;
    range.dispatchEvent(new Event('input', {bubbles: true}));
    range.dispatchEvent(new Event('change', {bubbles: true}));
    if (srcs() === before) problems.push(`slider ${i + 1} (set to ${range.value}) does not change the picture`);
    range.value = old;
    range.dispatchEvent(new Event('input', {bubbles: true}));
  });
  // The repeat menu (.ddpm-player-mode) changes how it plays, not the picture.
  for (const [i, sel] of Array.from(player.querySelectorAll('select:not(.ddpm-player-mode)')).entries()) {
    if (sel.options.length < 2) continue;
    const before = srcs(), old = sel.selectedIndex;
    sel.selectedIndex = (old + 1) % sel.options.length;
    sel.dispatchEvent(new Event('input', {bubbles: true}));
    sel.dispatchEvent(new Event('change', {bubbles: true}));
    if (srcs() === before) problems.push(`menu ${i + 1} (set to ${sel.value}) does not change the picture`);
    sel.selectedIndex = old;
    sel.dispatchEvent(new Event('change', {bubbles: true}));
  }
  await settle();
  return problems;
}"""

JS_ALT = r"""() => {
  const PATH = /^\S*[\/\\]\S*$|^\S+\.(png|jpe?g|gif|svg|webp)$/i;
  const GENERIC = /^(image|figure|fig|plot|picture|graph|chart|png|img|animation|frame)\s*\d*$/i;
  const bad = [];
  for (const img of document.querySelectorAll('img')) {
    if (img.closest('dialog.ddpm-lightbox')) continue;
    const src = (img.getAttribute('src') || '').slice(0, 60);
    const alt = img.getAttribute('alt');
    if (alt === null || !alt.trim()) bad.push(`no alt text: ${src}`);
    else if (PATH.test(alt.trim())) bad.push(`alt text is a file name: ${alt.slice(0, 60)}`);
    else if (GENERIC.test(alt.trim()) || alt.trim().split(/\s+/).length < 2)
      bad.push(`alt text says nothing: "${alt.slice(0, 60)}"`);
  }
  return bad;
}"""

JS_DUP_IDS = """() => {
  const count = {};
  for (const el of document.querySelectorAll('[id]')) count[el.id] = (count[el.id] || 0) + 1;
  return Object.entries(count).filter(([k, v]) => v > 1).map(([k, v]) => `${k} (${v}×)`);
}"""


# ---------------------------------------------------------------------------------
# One page, all checks.
# ---------------------------------------------------------------------------------
@dataclass
class Report:
    page: str
    problems: dict[str, list[str]] = field(default_factory=dict)
    formulas: int = 0
    clipped: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    console: int = 0
    weight: int = 0
    weight_gz: int = 0
    dropdowns: int = 0
    players: int = 0
    wide_display: list[dict] = field(default_factory=list)

    def add(self, check: str, items):
        items = [items] if isinstance(items, str) else list(items)
        if items:
            self.problems.setdefault(check, []).extend(items)

    def failed(self) -> list[str]:
        return sorted(self.problems)

    def text(self) -> str:
        lines = [f"{self.page}:"]
        for check in sorted(self.problems):
            items = self.problems[check]
            lines.append(f"  {check} ({len(items)}):")
            lines += [f"    - {p}" for p in items[:25]]
            if len(items) > 25:
                lines.append(f"    ... and {len(items) - 25} more")
        return "\n".join(lines)


class Inspector:
    """Opens pages of one server in one Chromium and runs every check."""

    def __init__(self, context, server: Server):
        self.context = context
        self.server = server
        self.remote: list[str] = []
        context.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" == self.server.origin:
            route.continue_()
        else:
            self.remote.append(url)
            route.abort("blockedbyclient")

    def inspect(self, path: str, wait_for: str | None = None) -> Report:
        report = Report(path)
        errors: list[str] = []
        page = self.context.new_page()
        page.on(
            "console",
            lambda m: (
                errors.append(f"console.{m.type}: {m.text}"[:200])
                if m.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"[:200]))
        missing: list[str] = []
        page.on(
            "response",
            lambda r: (
                missing.append(f"HTTP {r.status}: {r.url}")
                if r.status >= 400 and r.url.startswith(self.server.origin)
                else None
            ),
        )
        self.remote.clear()
        self.server.served.clear()
        try:
            page.set_viewport_size(dict(zip(("width", "height"), WIDTHS["desktop"])))
            page.goto(
                f"{self.server.origin}/{path}", wait_until="load", timeout=180_000
            )
            self._quiet(page)
            if wait_for:
                page.wait_for_selector(wait_for, timeout=30_000)
            page.evaluate(JS_WAIT_MATHJAX)
            # Scroll through the page so that anything loaded lazily is counted.
            page.evaluate("""async () => {
              for (let y = 0; y < document.body.scrollHeight; y += innerHeight) {
                scrollTo(0, y); await new Promise(r => setTimeout(r, 15)); }
              scrollTo(0, 0); }""")
            self._quiet(page)
            report.weight = sum(n for _, n, _ in self.server.served)
            report.weight_gz = sum(z for _, _, z in self.server.served)

            report.add("raw TeX", page.evaluate(JS_RAW_TEX))
            typeset = page.evaluate(JS_TYPESET)
            report.formulas = typeset["formulas"]
            report.add("typeset", typeset["bad"])
            report.add(
                "widgets",
                [
                    f"{n} ipywidgets view(s) in the static page: a control "
                    "that needs a kernel does nothing here"
                ]
                if (n := page.evaluate(JS_WIDGETS))
                else [],
            )
            report.add("alt text", page.evaluate(JS_ALT))
            report.add("ids", [f"duplicate id {d}" for d in page.evaluate(JS_DUP_IDS)])
            self._dropdowns(page, report)
            self._players(page, report)
            for name, (w, h) in WIDTHS.items():
                page.set_viewport_size({"width": w, "height": h})
                page.evaluate(JS_OPEN_ALL)
                page.wait_for_timeout(150)
                page.evaluate(JS_WAIT_MATHJAX)
                clip = page.evaluate(JS_CLIPPED)
                report.clipped[name] = len(clip["clipped"])
                report.add("clipped", [f"at {w} px: {c}" for c in clip["clipped"]])
                if clip["page_overflow"] > 1:
                    report.add(
                        "clipped",
                        f"at {w} px the page scrolls sideways by "
                        f"{clip['page_overflow']} px: " + "; ".join(clip["culprits"]),
                    )
                if name == "phone":
                    report.wide_display = clip["wide_display"]
                    controls = page.evaluate(JS_CONTROLS, w)
                    report.add(
                        "players",
                        [
                            f"at {w} px off the screen: {c}"
                            for c in controls["offscreen"]
                        ],
                    )
            page.wait_for_timeout(100)
        finally:
            page.close()
        report.requests = len(self.remote)
        report.add(
            "requests", [f"left the machine: {u[:120]}" for u in self.remote] + missing
        )
        report.console = len(errors)
        report.add("console", errors)
        if report.weight_gz > BUDGET_BYTES:
            report.add(
                "weight",
                f"{report.weight_gz / 1e6:.2f} MB gzipped > budget "
                f"{BUDGET_BYTES / 1e6:.2f} MB (largest: {self._largest()})",
            )
        if report.weight > RAW_BUDGET_BYTES:
            report.add(
                "weight",
                f"{report.weight / 1e6:.2f} MB uncompressed > budget "
                f"{RAW_BUDGET_BYTES / 1e6:.2f} MB (largest: {self._largest()})",
            )
        return report

    def _quiet(self, page, seconds: float = 60):
        """Wait until the server has had no request for half a second."""
        waited = 0.0
        while waited < seconds:
            n = len(self.server.served)
            page.wait_for_timeout(500)
            waited += 0.5
            if len(self.server.served) == n:
                return

    def _largest(self) -> str:
        top = sorted(self.server.served, key=lambda s: -s[1])[:3]
        return ", ".join(f"{p.split('?')[0]} {n / 1e3:.0f} kB" for p, n, _ in top)

    def _dropdowns(self, page, report: Report):
        toggles = page.query_selector_all(".admonition.toggle")
        report.dropdowns = len(toggles)
        for k, item in enumerate(toggles):
            title = item.query_selector(":scope > .admonition-title")
            if title is None:
                report.add("dropdowns", f"dropdown {k + 1} has no title bar")
                continue
            name = " ".join(title.inner_text().split())[:50]
            # The parts inside the bar first: on a fresh page a handler that only knows
            # the bar itself has no state yet to hide its bug behind.
            targets = []
            for sel, what in (
                ("a", "link"),
                ("mjx-container", "formula"),
                ("em, strong, code", "text"),
                (".toggle-button", "chevron"),
            ):
                el = title.query_selector(sel)
                if el is not None and el.bounding_box():
                    targets.append((what, el, None))
            targets.append(("title bar", title, {"x": 6, "y": 6}))
            for what, el, pos in targets:
                for action in ("open", "close"):
                    before = page.evaluate(JS_TOGGLE_STATES)
                    url = page.url
                    try:
                        el.click(position=pos, timeout=5_000) if pos else el.click(
                            timeout=5_000
                        )
                    except Exception as exc:  # noqa: BLE001 - reported, not raised
                        report.add(
                            "dropdowns",
                            f'"{name}": clicking its {what} failed: {exc}'[:200],
                        )
                        break
                    page.wait_for_timeout(40)
                    after = page.evaluate(JS_TOGGLE_STATES)
                    if page.url.split("#")[0] != url.split("#")[0]:
                        report.add(
                            "dropdowns", f'"{name}": clicking its {what} left the page'
                        )
                        page.go_back()
                        break
                    changed = [
                        i for i, (b, a) in enumerate(zip(before, after)) if b != a
                    ]
                    if changed != [k]:
                        others = [i + 1 for i in changed if i != k]
                        report.add(
                            "dropdowns",
                            f'"{name}": clicking its {what} to {action} it '
                            + ("did not toggle it" if k not in changed else "")
                            + (
                                f"{' and ' if k not in changed else ''}toggled dropdown(s) "
                                f"{others}"
                                if others
                                else ""
                            ),
                        )
                        break

    def _players(self, page, report: Report):
        players = page.query_selector_all(".ddpm-player")
        report.players = len(players)
        for k, player in enumerate(players):
            player.scroll_into_view_if_needed()
            problems = player.evaluate(JS_PLAYER)
            report.add("players", [f"player {k + 1} {p}" for p in problems])
        controls = page.evaluate(JS_CONTROLS, WIDTHS["desktop"][0])
        report.add(
            "players",
            [
                f"control outside a .ddpm-player (it cannot work without a "
                f"kernel, or is not checked): {c}"
                for c in controls["outside"]
            ],
        )


# ---------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium_context():
    chromium = find_chromium()
    if chromium is None:
        _unavailable(
            "no Chromium found ($CHROMIUM, chromium on the PATH, /usr/bin/chromium)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed")
    profile = tempfile.mkdtemp(prefix="ddpm-chromium-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            service_workers="block",
            viewport={"width": WIDTHS["desktop"][0], "height": WIDTHS["desktop"][1]},
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def _book_pages() -> list[str]:
    if not BOOK.is_dir():
        return []
    pages = []
    for p in sorted(BOOK.rglob("*.html")):
        rel = p.relative_to(BOOK)
        if SKIP_DIRS & set(rel.parts[:-1]):
            continue
        if re.search(
            r'http-equiv="refresh"',
            p.read_text(encoding="utf-8", errors="replace")[:2000],
            re.I,
        ):
            continue  # a redirect (index.html -> the first page)
        pages.append(rel.as_posix())
    return pages


PAGES = _book_pages()
#: Extra visits: the search page with results (page titles are shown there).
#: (On the search page Sphinx shows a plain-text excerpt of each page's source under
#: its title; the excerpts keep their TeX, so only the titles are checked there.)
SEARCHES = [
    (
        "search.html?q=loss",
        "#search-results .search-summary, #search-results ul.search li",
    )
]
RESULTS: dict[str, Report] = {}


@pytest.fixture(scope="module")
def book_inspector(chromium_context):
    if not PAGES:
        _unavailable(f"no built book under {BOOK}: run `make book` first")
    server = Server(BOOK)
    inspector = Inspector(chromium_context, server)
    yield inspector
    chromium_context.unroute("**/*")
    server.close()


# ---------------------------------------------------------------------------------
# The book
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES or ["<no built book>"])
def test_page(book_inspector, path):
    report = book_inspector.inspect(path)
    RESULTS[path] = report
    assert not report.problems, report.text()


@pytest.mark.parametrize(("path", "wait_for"), SEARCHES)
def test_search_results(book_inspector, path, wait_for):
    report = book_inspector.inspect(path, wait_for=wait_for)
    RESULTS[path] = report
    assert not report.problems, report.text()


def summary_table(results: dict[str, Report]) -> str:
    head = (
        f"{'page':<34}{'formulas':>9}{'clipped 1280':>13}{'clipped 390':>12}"
        f"{'requests':>9}{'console':>8}{'dropdowns':>10}{'players':>8}"
        f"{'kB':>7}{'kB gz':>7}  result"
    )
    lines = [head, "-" * len(head)]
    for path, r in results.items():
        lines.append(
            f"{path[:33]:<34}{r.formulas:>9}{r.clipped.get('desktop', 0):>13}"
            f"{r.clipped.get('phone', 0):>12}{r.requests:>9}{r.console:>8}{r.dropdowns:>10}"
            f"{r.players:>8}{r.weight / 1e3:>7.0f}{r.weight_gz / 1e3:>7.0f}  "
            + ("ok" if not r.problems else "FAIL: " + ", ".join(r.failed()))
        )
    lines.append(
        f"budget per page (HTML plus everything it loads): {BUDGET_BYTES / 1e6:.1f} MB "
        f"gzipped, {RAW_BUDGET_BYTES / 1e6:.1f} MB uncompressed"
    )
    wide = [(p, w) for p, r in results.items() for w in r.wide_display]
    if wide:
        lines.append("")
        lines.append(
            "display equations wider than the column at 390 px (they scroll, with the cue):"
        )
        for p, w in wide:
            lines.append(
                f"  {p}  ({w['label'] or '-'})  {w['hidden']} px hidden  {w['tex']}"
            )
    return "\n".join(lines)


def test_summary(capsys):
    """Print the per-page table (and write it next to the book)."""
    if not RESULTS:
        pytest.skip("no page was inspected")
    table = summary_table(RESULTS)
    if BOOK.is_dir():
        (BOOK.parent / "browser-summary.txt").write_text(table + "\n", encoding="utf-8")
    with capsys.disabled():
        print("\n\n" + table + "\n")


# ---------------------------------------------------------------------------------
# Deliberately broken pages: each check must catch its kind of breakage.
# ---------------------------------------------------------------------------------
def _asset(package: str, relative: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / relative


HEAD = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="pst/styles/pydata-sphinx-theme.css">
<link rel="stylesheet" href="togglebutton.css">
{book_css}
<script>
  const toggleHintShow = 'Click to show'; const toggleHintHide = 'Click to hide';
  const toggleOpenOnPrint = 'true'; const togglebuttonSelector = '.toggle, .admonition.dropdown';
</script>
<script src="togglebutton.js"></script>
{book_js}
{mathjax}
{extra_head}
</head><body><div class="bd-content"><main class="bd-article">{body}</main></div></body></html>"""

MATHJAX = """<script>window.MathJax = {options: {enableMenu: false}, tex: {tags: 'none'}};</script>
<script defer src="mathjax/es5/tex-chtml-full.js"></script>"""

LONG_TEX = " + ".join(
    [r"\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon"] * 4
)

CLEAN_BODY = (
    r"""
<h1>A page with nothing wrong</h1>
<p>Inline math <span class="math notranslate nohighlight">\(q(x_t \mid x_0) =
\mathcal{N}(\sqrt{\bar\alpha_t}\,x_0, (1-\bar\alpha_t) I)\)</span> and a long one
<span class="math notranslate nohighlight">\("""
    + LONG_TEX
    + r"""\)</span>.</p>
<div class="math notranslate nohighlight">\["""
    + LONG_TEX
    + r"""\]</div>
<div class="admonition exercise"><p class="admonition-title">Exercise 1</p><p id="ex-1">Show it.</p></div>
<div class="solution dropdown admonition" id="sol-1"><p class="admonition-title">Solution to
  <a class="reference internal" href="#ex-1">Exercise 1</a> with \(\beta_t\)</p>
  <section id="sol-1-content"><p>It follows.</p></section></div>
<div class="solution dropdown admonition" id="sol-2"><p class="admonition-title">Solution to
  <a class="reference internal" href="#ex-1">Exercise 2</a></p>
  <section id="sol-2-content"><p>Also.</p></section></div>
<div class="ddpm-player">
  <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="Points of the chain at step 0">
  <input type="range" min="0" max="2" value="0" aria-label="step">
  <script>
    (() => { const p = document.currentScript.parentElement, img = p.querySelector('img');
      p.querySelector('input').addEventListener('input', e => {
        img.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=#' + e.target.value;
        img.alt = 'Points of the chain at step ' + e.target.value; }); })();
  </script>
</div>
"""
)

PLAYER_WIDE = """<div style="overflow: hidden"><div class="ddpm-player">
  <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="Points of the chain at step 0">
  <div style="white-space: nowrap"><input type="range" min="0" max="2" value="0" style="width: 300px">
  <button>−</button><button>⇤</button><button>‹</button><button>◀</button><button>‖</button>
  <button>▶</button><button>›</button><button>⇥</button><button>+</button></div>
  <script>
    (() => { const p = document.currentScript.parentElement, img = p.querySelector('img');
      p.querySelector('input').addEventListener('input', e => {
        img.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=#' + e.target.value; }); })();
  </script>
</div></div>"""

#: name: (the check that must catch it, what is broken, extra <head>, body,
#:        (load book.css, load book.js))
BROKEN = {
    "remote-script": (
        "requests",
        "a script from a CDN",
        '<script src="https://unpkg.com/thebe@0.8.2/lib/index.js"></script>',
        CLEAN_BODY,
        (True, True),
    ),
    "throws": (
        "console",
        "a script that throws",
        "",
        CLEAN_BODY + "<script>undefinedFunction();</script>",
        (True, True),
    ),
    "raw-tex": (
        "raw TeX",
        "a title and a sidebar entry in TeX, on a page without MathJax",
        "",
        r'<nav class="bd-sidebar-primary"><a href="#">5. The loss \(L_{\text{simple}}\)</a>'
        "</nav><p>Plain text.</p>",
        (True, True),
    ),
    "tex-error": (
        "typeset",
        "a TeX error and an undefined command",
        "",
        r'<p><span class="math">\(\frac{1}\)</span> and \(\undefinedmacro\)</p>'
        + CLEAN_BODY,
        (True, True),
    ),
    "clipped": (
        "clipped",
        "the theme's CSS alone (inline math clipped, no scroll cue)",
        "",
        CLEAN_BODY,
        (False, True),
    ),
    "sideways": (
        "clipped",
        "a long code name that makes a phone scroll sideways",
        "",
        CLEAN_BODY
        + '<p><span style="white-space: nowrap">'
        + "an_unbreakable_name_" * 8
        + "</span></p>",
        (True, True),
    ),
    "dropdowns": (
        "dropdowns",
        "sphinx-togglebutton 0.4.5 without the book's fix",
        "",
        CLEAN_BODY,
        (True, False),
    ),
    "dead-slider": (
        "players",
        "a player whose slider does not change its picture",
        "",
        CLEAN_BODY.replace("img.src = ", "void "),
        (True, True),
    ),
    "wide-player": (
        "players",
        "a player whose buttons are cut off on a phone",
        "",
        CLEAN_BODY.split('<div class="ddpm-player">')[0] + PLAYER_WIDE,
        (True, True),
    ),
    "stray-control": (
        "players",
        "a slider outside any player",
        "",
        CLEAN_BODY + '<input type="range" min="0" max="9" aria-label="t">',
        (True, True),
    ),
    "widgets": (
        "widgets",
        "an ipywidgets slider saved in the page",
        "",
        CLEAN_BODY + '<div class="jupyter-widgets widget-slider"></div><script type='
        '"application/vnd.jupyter.widget-view+json">{"model_id": "abc"}</script>',
        (True, True),
    ),
    "alt-path": (
        "alt text",
        "a figure whose alt text is its file path",
        "",
        CLEAN_BODY + '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" '
        'alt="../_build/jupyter_execute/3f2a.png">',
        (True, True),
    ),
    "dup-ids": (
        "ids",
        "two sections with the same id",
        "",
        CLEAN_BODY + '<section id="solution-content"></section>'
        '<section id="solution-content"></section>',
        (True, True),
    ),
    "heavy": (
        "weight",
        "a page that loads 4.5 MB that does not compress",
        '<script src="heavy.js"></script>',
        CLEAN_BODY,
        (True, True),
    ),
}
BROKEN_RESULTS: dict[str, tuple[str, list[str]]] = {}


@pytest.fixture(scope="module")
def fixture_site(chromium_context, tmp_path_factory):
    site = tmp_path_factory.mktemp("browser-fixtures")
    links = {
        # The theme's stylesheet finds its icon fonts at ../vendor/, as in a built book.
        "pst": _asset("pydata_sphinx_theme", "theme/pydata_sphinx_theme/static"),
        "togglebutton.js": _asset("sphinx_togglebutton", "_static/togglebutton.js"),
        "togglebutton.css": _asset("sphinx_togglebutton", "_static/togglebutton.css"),
        "book.css": ROOT / "book_static" / "book.css",
        "book.js": ROOT / "book_static" / "book.js",
        "mathjax": ROOT / "_vendor" / "mathjax",
    }
    for name, target in links.items():
        (site / name).symlink_to(target)
    # Random bytes do not compress: 4.5 MB exceeds both budgets.
    noise = random.Random(0).randbytes(2_250_000).hex()
    (site / "heavy.js").write_text("/*" + noise + "*/\n", encoding="utf-8")

    def write(name, title, body, extra_head="", book=(True, True), mathjax=True):
        html = HEAD.format(
            title=title,
            book_css='<link rel="stylesheet" href="book.css">' if book[0] else "",
            book_js='<script src="book.js"></script>' if book[1] else "",
            mathjax=MATHJAX if mathjax else "",
            extra_head=extra_head,
            body=body,
        )
        (site / name).write_text(html, encoding="utf-8")

    write("clean.html", "A clean page", CLEAN_BODY)
    for name, (check, _, head, body, book) in BROKEN.items():
        title = (
            r"5. The loss \(L_{\text{simple}}\)"
            if check == "raw TeX"
            else f"Broken: {name}"
        )
        write(
            f"broken-{name}.html", title, body, head, book, mathjax=check != "raw TeX"
        )
    server = Server(site)
    inspector = Inspector(chromium_context, server)
    yield inspector
    chromium_context.unroute("**/*")
    server.close()


def test_clean_fixture_passes(fixture_site):
    """The checks do not cry wolf: a page with math, dropdowns and a player passes."""
    report = fixture_site.inspect("clean.html")
    assert not report.problems, report.text()
    assert report.formulas >= 4 and report.dropdowns == 2 and report.players == 1


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_fixture_is_caught(fixture_site, name):
    check, what = BROKEN[name][:2]
    report = fixture_site.inspect(f"broken-{name}.html")
    BROKEN_RESULTS[name] = (what, report.failed())
    assert check in report.problems, (
        f"the {check!r} check missed {what}:\n{report.text()}"
    )
    # Each broken page breaks one thing (a CDN script also fails to load: console;
    # without book.js the scroll cues of wide formulas go too: clipped).
    allowed = {check, "console"} | ({"clipped"} if name == "dropdowns" else set())
    assert set(report.problems) <= allowed, report.text()


def test_broken_fixture_summary(capsys):
    if not BROKEN_RESULTS:
        pytest.skip("no broken page was inspected")
    lines = ["deliberately broken page -> checks that failed"]
    for name, (what, failed) in BROKEN_RESULTS.items():
        lines.append(f"  {what:<62} -> {', '.join(failed) or 'NOTHING (missed)'}")
    with capsys.disabled():
        print("\n" + "\n".join(lines) + "\n")
