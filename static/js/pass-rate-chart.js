/* The prompt page's pass-rate charts, drawn with the vendored Chart.js from the data the page
   embeds (json_script "pass-rate-data"). Without script, or if Chart.js failed to load, the table
   below the charts stays open and is the whole view. */
(function () {
  "use strict";

  function draw() {
    var source = document.getElementById("pass-rate-data");
    var charts = document.querySelector(".pass-rate-charts");
    if (!source || !charts || typeof window.Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var palette = ["#2f5bd3", "#2e8a57", "#d08a1e", "#9b1c1c", "#5b3596", "#474f5c"];
    var percent = function (value) { return value === null ? null : Math.round(value * 1000) / 10; };
    var axis = {
      min: 0, max: 100,
      ticks: { callback: function (value) { return value + "%"; } },
      grid: { color: "#eef0f3" }
    };
    var tooltip = { callbacks: { label: function (ctx) { return (ctx.dataset.label ? ctx.dataset.label + ": " : "") + ctx.parsed.y + "%"; } } };

    var style = getComputedStyle(document.body);
    window.Chart.defaults.font.family = style.fontFamily;
    window.Chart.defaults.color = "#5a6473";
    charts.hidden = false;
    var table = document.querySelector(".pass-rate-panel .chart-table");
    if (table) table.open = false;

    new window.Chart(document.getElementById("pass-rate-by-version"), {
      type: "bar",
      data: {
        labels: data.versions.map(function (row) { return "v" + row.version; }),
        datasets: [{
          label: "Pass rate",
          data: data.versions.map(function (row) { return percent(row.pass_rate); }),
          backgroundColor: "#2f5bd3", borderRadius: 3, maxBarThickness: 42
        }]
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: { y: axis, x: { grid: { display: false } } },
        plugins: { legend: { display: false }, tooltip: tooltip }
      }
    });

    new window.Chart(document.getElementById("pass-rate-over-time"), {
      type: "line",
      data: {
        labels: data.over_time.days,
        datasets: data.over_time.suites.map(function (series, index) {
          var colour = palette[index % palette.length];
          return {
            label: series.suite, data: series.pass_rates.map(percent), spanGaps: true,
            borderColor: colour, backgroundColor: colour, pointRadius: 3, tension: 0.2
          };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: { y: axis, x: { grid: { display: false } } },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } }, tooltip: tooltip }
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
