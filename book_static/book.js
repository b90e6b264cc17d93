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
 * 2. Figures. A figure shown smaller than its natural size (a multi-panel
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

  // ---- 2. figures ----------------------------------------------------------
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
