/* Draws every [data-chart] element from the JSON <script> it names (built by dashboard/charts.py).
   A chart with data-span-url loads a clicked span's detail panel through htmx; customdata[0] is
   the span's pk. Plotly and htmx are loaded before this file (all three are deferred). */
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false, displayModeBar: false };

  function spanUrl(template, pk) {
    return template.replace(/\/0\/$/, "/" + encodeURIComponent(pk) + "/");
  }

  function onSpanClick(element) {
    element.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      if (!point || !point.customdata) return;
      htmx.ajax("GET", spanUrl(element.dataset.spanUrl, point.customdata[0]), {
        target: element.dataset.spanTarget,
        swap: "innerHTML",
      });
    });
  }

  function draw(element) {
    var source = document.getElementById(element.dataset.chart);
    if (!source || !window.Plotly) return;
    var figure = JSON.parse(source.textContent);
    element.observatoryFigure = figure;
    Plotly.newPlot(element, figure.data, figure.layout, CONFIG).then(function () {
      if (element.dataset.spanUrl) onSpanClick(element);
      element.dispatchEvent(new CustomEvent("observatory:drawn", { bubbles: true }));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart]").forEach(draw);
  });
})();
