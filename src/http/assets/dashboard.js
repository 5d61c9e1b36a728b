// Console dashboard charts (Chart.js). The figures come as JSON in each canvas's data-chart
// attribute (an attribute survives htmx swaps, which drop script elements); the same
// figures are in tables for screen readers.
(() => {
  const charts = new Map();
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const readJson = (canvasId) => {
    const el = document.getElementById(canvasId);
    return el?.dataset.chart ? JSON.parse(el.dataset.chart) : null;
  };
  const palette = ["#0b57d0", "#146c2e", "#b3261e", "#7a4b00", "#6d28d9", "#0e7490", "#be185d", "#4b5563"];

  function draw(canvasId, config) {
    const canvas = document.getElementById(canvasId);
    if (!canvas || !window.Chart) return;
    // A refreshed panel brings a new canvas: the chart on the old one goes.
    charts.get(canvasId)?.destroy();
    charts.set(canvasId, new window.Chart(canvas, config));
  }

  function baseOptions(percent) {
    const fg = css("--fg") || "#1b1f24";
    const grid = css("--border") || "#c7ccd4";
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: { legend: { labels: { color: fg } } },
      scales: {
        x: { ticks: { color: fg }, grid: { color: grid } },
        y: {
          beginAtZero: true,
          ticks: { color: fg, ...(percent ? { callback: (v) => `${v} %` } : { precision: 0 }) },
          grid: { color: grid },
          ...(percent ? { max: 100 } : {}),
        },
      },
    };
  }

  function adoption() {
    const data = readJson("adoption-chart");
    if (!data) return;
    draw("adoption-chart", {
      type: "line",
      data: {
        labels: data.days,
        datasets: [
          {
            label: "Supported (licensed, at or above the minimum version)",
            data: data.supported,
            borderColor: palette[0],
            backgroundColor: palette[0],
            spanGaps: true,
          },
          {
            label: "Licensed (verified proof)",
            data: data.licensed,
            borderColor: palette[1],
            backgroundColor: palette[1],
            borderDash: [6, 4],
            spanGaps: true,
          },
        ],
      },
      options: baseOptions(true),
    });
  }

  function versions() {
    const data = readJson("versions-chart");
    if (!data) return;
    draw("versions-chart", {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{ label: "Sessions", data: data.sessions, backgroundColor: palette[0] }],
      },
      options: { ...baseOptions(false), indexAxis: "y" },
    });
  }

  function drawAll() {
    adoption();
    versions();
  }

  document.addEventListener("DOMContentLoaded", drawAll);
  // The live panel is refreshed by htmx: redraw its chart from the new figures.
  document.addEventListener("htmx:afterSettle", versions);
})();
