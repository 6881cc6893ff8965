// Draw the patient page's plotly figures from the JSON block (no inline script: strict CSP);
// with a population fit configured, add the B-cell forecast band once the page has drawn.
(function () {
  "use strict";
  var block = document.getElementById("figures");
  if (!block || typeof Plotly === "undefined") { return; }
  var figures = JSON.parse(block.textContent || "{}");
  var config = { responsive: true, displaylogo: false };
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    var fig = figures[el.getAttribute("data-figure")];
    if (!fig) { return; }
    fig.layout.autosize = true;
    delete fig.layout.width;
    Plotly.newPlot(el, fig.data, fig.layout, config).then(
      function () { window.requestAnimationFrame(function () { Plotly.Plots.resize(el); }); }
    );
  });

  var url = block.getAttribute("data-forecast");
  var note = document.getElementById("forecast-note");
  var plot = document.getElementById("plot-b_cells");
  if (!url || !note) { return; }
  fetch(url, { credentials: "same-origin" }).then(function (resp) { return resp.json(); })
    .then(function (fc) {
      if (!fc.available) { note.textContent = "no forecast band: " + fc.message; return; }
      var pct = Math.round(fc.level * 100);
      var kind = fc.interval === "confidence" ? "confidence band (parameters only)"
        : "prediction interval";
      var band = [
        { type: "scatter", mode: "lines", x: fc.days, y: fc.low, line: { width: 0 },
          hoverinfo: "skip", showlegend: false, name: "forecast low" },
        { type: "scatter", mode: "lines", x: fc.days, y: fc.high, fill: "tonexty",
          fillcolor: "rgba(31, 95, 139, 0.18)", line: { width: 0 }, hoverinfo: "skip",
          name: pct + " % " + kind },
        { type: "scatter", mode: "lines", x: fc.days, y: fc.median,
          line: { dash: "dash", color: "#1f5f8b" }, name: "forecast median" }
      ];
      if (plot && plot.data) { Plotly.addTraces(plot, band, [0, 0, 0]); }
      note.textContent = "forecast: median and " + pct + " % " + kind + " from the " +
        fc.model + " population fit (" + fc.fit + "), MAP from " + fc.n_observations +
        " observations of this patient";
      plot.setAttribute("data-forecast-drawn", "true");
    })
    .catch(function () { note.textContent = "no forecast band: the server did not answer"; });
})();
