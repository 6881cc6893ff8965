// Draw the patient page's plotly figures from the JSON block (no inline script: strict CSP).
(function () {
  "use strict";
  var block = document.getElementById("figures");
  if (!block || typeof Plotly === "undefined") { return; }
  var figures = JSON.parse(block.textContent || "{}");
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    var fig = figures[el.getAttribute("data-figure")];
    if (!fig) { return; }
    fig.layout.autosize = true;
    delete fig.layout.width;
    Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false }).then(
      function () { window.requestAnimationFrame(function () { Plotly.Plots.resize(el); }); }
    );
  });
})();
