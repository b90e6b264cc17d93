// Written for this book (not part of @jupyter-widgets/html-manager).
// Loaded on pages with Jupyter widgets, after require.js and before embed-amd.js.
(function () {
  // 1. embed-amd.js defines the AMD module "@jupyter-widgets/html-manager/dist/libembed-amd"
  //    and loads its icon fonts from next to that module's RequireJS URL. By default
  //    RequireJS puts it under the page's own folder and the fonts 404, so map the
  //    module prefix to the folder this file (and embed-amd.js) is served from.
  var script = document.currentScript;
  if (script && window.require && window.require.config) {
    var folder = new URL(".", script.src).href; // ".../_static/jupyter-widgets/"
    window.require.config({
      paths: { "@jupyter-widgets/html-manager/dist": folder.replace(/\/$/, "") },
    });
    window.__jupyter_widgets_assets_path__ = folder;
  }

  // 2. The widgets typeset math in descriptions with the MathJax 2 call
  //    MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]); the book uses MathJax 3,
  //    where that throws. Provide that one call on top of MathJax 3, turning the
  //    $...$ / $$...$$ delimiters widgets use into \(...\) / \[...\].
  //    (MathJax is loaded with "defer", so it exists by DOMContentLoaded.)
  document.addEventListener("DOMContentLoaded", function () {
    var MJ = window.MathJax;
    if (!MJ || !MJ.version || MJ.Hub || !MJ.startup) {
      return;
    }
    MJ.Hub = {
      Queue: function (job) {
        var el = job && job[2];
        if (!el || !el.nodeType) {
          return;
        }
        var walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        for (var node = walker.nextNode(); node; node = walker.nextNode()) {
          node.nodeValue = node.nodeValue
            .replace(/\$\$([^$]+)\$\$/g, "\\[$1\\]")
            .replace(/\$([^$]+)\$/g, "\\($1\\)");
        }
        MJ.startup.promise
          .then(function () {
            return MJ.typesetPromise([el]);
          })
          .catch(function (err) {
            console.warn("MathJax could not typeset a widget label:", err);
          });
      },
    };
  });
})();
