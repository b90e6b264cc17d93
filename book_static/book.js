/*
 * The book's own scripts (listed in _config.yml, html_js_files).
 *
 * 1. Solution dropdowns. sphinx-togglebutton 0.4.5 (the newest release) makes
 *    the whole title bar of a dropdown clickable, but its click handler only
 *    knows the bar itself, the chevron button and its SVG parts. A click on
 *    anything else in the bar -- the link to the exercise, a formula, an
 *    emphasised word -- reads the global `button` left over from an earlier
 *    click: on a fresh page it throws "button is not defined", later it toggles
 *    the dropdown clicked before. Here one listener, registered before the
 *    page's own (capture phase, on the document), handles every click in a
 *    dropdown's title: it toggles that dropdown and no other, and stops the
 *    event so the broken handler never runs. A plain click on the exercise link
 *    toggles too (the exercise is just above the solution); a click with a
 *    modifier key or the middle button still follows the link.
 *    The dropdown is toggled with sphinx-togglebutton's own toggleHidden(), so
 *    its classes, aria-expanded and hint text stay as the extension sets them.
 *
 * 2. Scroll cues. A formula, an output, a code block or a table that is wider
 *    than the column scrolls sideways; such a box gets the class ddpm-scrolls,
 *    and ddpm-more-left / ddpm-more-right while content is hidden on that side
 *    (book.css draws a shadow on that edge). Boxes are measured when MathJax has
 *    typeset the page, whenever their size changes (a dropdown opens, the
 *    window turns) and when they are scrolled.
 *
 * 3. Figures. A figure shown smaller than its natural size (a multi-panel
 *    figure on a phone) can be clicked or tapped, or focused and opened with
 *    Enter, to see it full size in a scrollable overlay.
 */
(function () {
  "use strict";

  // ---- 1. dropdowns ------------------------------------------------------
  function toggleFromTitle(event) {
    if (event.button !== 0) return;
    var title = event.target.closest && event.target.closest(".admonition.toggle > .admonition-title");
    if (!title) return;
    var link = event.target.closest("a[href]");
    if (link && (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey)) return;
    var item = title.parentElement;
    var button = title.querySelector(":scope > .toggle-button") || title.querySelector(".toggle-button");
    event.preventDefault();
    event.stopPropagation();
    if (button && typeof window.toggleHidden === "function") {
      window.toggleHidden(button);
    } else {
      item.classList.toggle("toggle-hidden");
    }
  }
  document.addEventListener("click", toggleFromTitle, true);

  // ---- 2. scroll cues ------------------------------------------------------
  var SCROLLERS = "span.math, div.math mjx-container, .bd-content div.cell_output pre, " +
    ".bd-content div.cell_input pre, .bd-content .table-wrapper, " +
    ".bd-content .pst-scrollable-table-container";

  var SLACK = 3;

  function updateCue(el) {
    // A formula is measured by its MathJax box: a few pixels of scrollable
    // overflow are the overhang of an italic letter, not hidden content.
    // (Only a formula's own box: a table or an output is measured as a whole.)
    var math = el.matches("span.math, mjx-container") ? el.querySelector("mjx-math") : null;
    var width = math ? math.getBoundingClientRect().width : el.scrollWidth;
    var max = el.scrollWidth - el.clientWidth;
    var over = width - el.clientWidth > SLACK && el.clientWidth > 0;
    el.classList.toggle("ddpm-scrolls", over);
    el.classList.toggle("ddpm-more-left", over && el.scrollLeft > 1);
    el.classList.toggle("ddpm-more-right", over && el.scrollLeft < max - 1);
  }

  var observer = window.ResizeObserver ? new ResizeObserver(function (entries) {
    entries.forEach(function (entry) { updateCue(entry.target); });
  }) : null;
  var watched = new WeakSet();

  function watchScrollers() {
    document.querySelectorAll(SCROLLERS).forEach(function (el) {
      updateCue(el);
      if (observer && !watched.has(el)) {
        watched.add(el);
        observer.observe(el);
      }
    });
  }

  document.addEventListener("scroll", function (e) {
    if (e.target.matches && e.target.matches(SCROLLERS)) updateCue(e.target);
  }, true);
  window.addEventListener("load", function () {
    watchScrollers();
    // MathJax replaces each formula's text by a new box once it has typeset it.
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(watchScrollers);
    }
  });
  window.addEventListener("resize", function () {
    document.querySelectorAll(".ddpm-scrolls").forEach(updateCue);
  });

  // ---- 3. figures ----------------------------------------------------------
  var SELECTOR = ".bd-content div.cell_output img, .bd-content figure img";
  var dialog = null;

  function openImage(img) {
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.className = "ddpm-lightbox";
      dialog.setAttribute("aria-label", "Figure at full size");
      var close = document.createElement("button");
      close.type = "button";
      close.textContent = "\u00d7";
      close.setAttribute("aria-label", "Close");
      close.addEventListener("click", function () { dialog.close(); });
      dialog.appendChild(close);
      dialog.appendChild(document.createElement("img"));
      dialog.addEventListener("click", function (e) {
        if (e.target === dialog || e.target.tagName === "IMG") dialog.close();
      });
      document.body.appendChild(dialog);
    }
    var big = dialog.querySelector("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    big.width = img.naturalWidth;
    dialog.showModal();
  }

  function markZoomable() {
    document.querySelectorAll(SELECTOR).forEach(function (img) {
      if (img.closest(".ddpm-player") || img.closest("a")) return;
      var smaller = img.naturalWidth > 0 && img.clientWidth > 0 && img.clientWidth < img.naturalWidth - 1;
      img.classList.toggle("ddpm-zoomable", smaller);
      if (smaller) {
        img.tabIndex = 0;
        img.setAttribute("role", "button");
        img.setAttribute("aria-haspopup", "dialog");
      } else {
        img.removeAttribute("tabindex");
        img.removeAttribute("role");
        img.removeAttribute("aria-haspopup");
      }
    });
  }

  document.addEventListener("click", function (e) {
    var img = e.target.closest && e.target.closest("img.ddpm-zoomable");
    if (img) openImage(img);
  });
  document.addEventListener("keydown", function (e) {
    if ((e.key === "Enter" || e.key === " ") && e.target.matches && e.target.matches("img.ddpm-zoomable")) {
      e.preventDefault();
      openImage(e.target);
    }
  });
  window.addEventListener("load", markZoomable);
  window.addEventListener("resize", markZoomable);
})();
