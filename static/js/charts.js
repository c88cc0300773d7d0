/* Draws every [data-chart] element from the JSON <script> it names (built by the dashboard/charts package).
   A chart with data-span-url loads a clicked span's (or test result's) detail panel through htmx;
   customdata[0], or customdata itself, is its pk. Plotly and htmx are loaded before this file
   (all three are deferred). */
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false, displayModeBar: false };

  function spanUrl(template, pk) {
    return template.replace(/\/0\/$/, "/" + encodeURIComponent(pk) + "/");
  }

  // customdata is [pk, ...] per point (waterfall) or the pk itself (heatmap cells; 0: no result).
  function onSpanClick(element) {
    element.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      if (!point || !point.customdata) return;
      var pk = Array.isArray(point.customdata) ? point.customdata[0] : point.customdata;
      if (!pk) return;
      htmx.ajax("GET", spanUrl(element.dataset.spanUrl, pk), {
        target: element.dataset.spanTarget,
        swap: "innerHTML",
      });
    });
  }

  // Under every chart: PNG and SVG buttons (plotly renders the image in the browser; nothing is
  // uploaded) and, when the element names one in data-csv-url, a link to the table behind it.
  function addDownloads(element) {
    var bar = document.createElement("div");
    bar.className = "chart-downloads";
    var name = element.dataset.filename || element.dataset.chart || "chart";
    ["png", "svg"].forEach(function (format) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn small";
      button.textContent = format.toUpperCase();
      button.dataset.chartDownload = format;
      button.addEventListener("click", function () {
        Plotly.downloadImage(element, {
          format: format,
          filename: name,
          width: element.offsetWidth || 900,
          height: element.offsetHeight || 400,
        });
      });
      bar.appendChild(button);
    });
    if (element.dataset.csvUrl) {
      var link = document.createElement("a");
      link.className = "btn small";
      link.href = element.dataset.csvUrl;
      link.textContent = "CSV";
      link.setAttribute("download", "");
      bar.appendChild(link);
    }
    element.insertAdjacentElement("afterend", bar);
  }

  function draw(element) {
    var source = document.getElementById(element.dataset.chart);
    if (!source || !window.Plotly) return;
    var figure = JSON.parse(source.textContent);
    element.observatoryFigure = figure;
    Plotly.newPlot(element, figure.data, figure.layout, CONFIG).then(function () {
      if (element.dataset.spanUrl) onSpanClick(element);
      if (!("noDownload" in element.dataset)) addDownloads(element);
      element.dispatchEvent(new CustomEvent("observatory:drawn", { bubbles: true }));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart]").forEach(draw);
  });
})();
