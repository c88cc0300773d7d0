/* Keeps the span waterfall in step with the collapsible span tree beside it: collapsing a subtree
   in the tree (a <details>) hides its spans' bars, and the rows close up. Also marks the selected
   span and wires the "Expand all" / "Collapse all" buttons. */
(function () {
  "use strict";

  function visiblePks(tree) {
    var visible = new Set();
    tree.querySelectorAll("[data-span-pk]").forEach(function (node) {
      if (!node.closest("details:not([open]) > ul")) visible.add(Number(node.dataset.spanPk));
    });
    return visible;
  }

  /* The original figure's rows, in order: [{pk, label}], from the bars' y and customdata and the
     row label annotations (one per row, y = row index). */
  function rowsOf(figure) {
    var rows = [];
    figure.data.forEach(function (trace) {
      trace.y.forEach(function (y, i) { rows[y] = { pk: trace.customdata[i][0] }; });
    });
    figure.layout.annotations.forEach(function (label) { rows[label.y].label = label; });
    return rows;
  }

  function filtered(figure, visible) {
    var shown = rowsOf(figure).filter(function (row) { return visible.has(row.pk); });
    var position = new Map(shown.map(function (row, i) { return [row.pk, i]; }));
    var data = figure.data.map(function (trace) {
      var keep = trace.customdata.map(function (c) { return position.has(c[0]); });
      var pick = function (values) {
        return Array.isArray(values) ? values.filter(function (_, i) { return keep[i]; }) : values;
      };
      var line = trace.marker.line || {};
      return Object.assign({}, trace, {
        y: trace.customdata.filter(function (_, i) { return keep[i]; })
          .map(function (c) { return position.get(c[0]); }),
        x: pick(trace.x), base: pick(trace.base), customdata: pick(trace.customdata),
        marker: Object.assign({}, trace.marker, {
          line: Object.assign({}, line, { color: pick(line.color), width: pick(line.width) }),
        }),
      });
    });
    var rowPx = (figure.layout.meta && figure.layout.meta.row_px) || 22;
    var layout = Object.assign({}, figure.layout, {
      height: Math.max(120, 48 + rowPx * shown.length),
      yaxis: Object.assign({}, figure.layout.yaxis, { range: [shown.length - 0.5, -0.5] }),
      annotations: shown.map(function (row, i) { return Object.assign({}, row.label, { y: i }); }),
    });
    return { data: data, layout: layout };
  }

  var pending = false;

  /* Redraw once per frame, however many <details> toggled ("Collapse all" toggles them all). */
  function sync(chart, tree) {
    if (pending || !chart.observatoryFigure) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      var next = filtered(chart.observatoryFigure, visiblePks(tree));
      Plotly.react(chart, next.data, next.layout);
    });
  }

  function select(tree, pk) {
    tree.querySelectorAll(".span-node.selected").forEach(function (n) { n.classList.remove("selected"); });
    var node = tree.querySelector('[data-span-pk="' + Number(pk) + '"]');
    if (node) node.classList.add("selected");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var chart = document.getElementById("waterfall");
    var tree = chart && document.getElementById(chart.dataset.tree);
    if (!tree) return;
    // "toggle" does not bubble, so listen in the capture phase.
    tree.addEventListener("toggle", function () { sync(chart, tree); }, true);
    document.querySelectorAll("[data-tree-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        var open = button.dataset.treeAction === "expand";
        tree.querySelectorAll("details").forEach(function (d) { d.open = open; });
      });
    });
    document.body.addEventListener("htmx:afterSwap", function (event) {
      var panel = event.detail.target.querySelector("[data-span-pk]");
      if (event.detail.target.id === "span-detail" && panel) select(tree, panel.dataset.spanPk);
    });
  });
})();
