// A feature's history (usage.history) with refused demand (usage.refusals), drawn by uPlot.

const uPlot = globalThis.uPlot; // vendor/uPlot.iife.min.js, loaded before the modules

const COLORS = {
  total: "#6b7280",
  used: "#2563eb",
  peak: "#60a5fa",
  booked: "#f59e0b",
  reserved: "#8b5cf6",
  refused: "#dc2626",
};

export function seconds(t) {
  return typeof t === "number" ? t : Date.parse(t) / 1000;
}

// Columns on the history's time axis; a refusal bucket (refusalStep seconds) fills every
// point inside it, so refused demand shows as a block as wide as the time it covers.
export function series(history, refusals, refusalStep) {
  const times = history.map((p) => seconds(p.t));
  const buckets = refusals.map((r) => [seconds(r.t), r.refused_licenses]);
  const refusedAt = (t) => {
    const hits = buckets.filter(([start]) => start <= t && t < start + refusalStep);
    return hits.length ? hits.reduce((n, [, licenses]) => n + licenses, 0) : null;
  };
  const pick = (field) => history.map((p) => p[field]);
  return [
    times,
    pick("total"),
    pick("used"),
    pick("peak_used"),
    pick("booked"),
    pick("reserved"),
    times.map(refusedAt),
  ];
}

const SPARSE = 30; // fewer reported points than this: draw each one, a lone one included

function line(label, stroke, sparse, extra = {}) {
  return { label, stroke, width: 2, spanGaps: true, points: { show: sparse, size: 6 }, ...extra };
}

export function draw(container, data) {
  container.replaceChildren();
  const width = Math.max(280, container.clientWidth);
  const sparse = data[2].filter((used) => used !== null).length < SPARSE;
  const options = {
    width,
    height: width < 500 ? 220 : 300,
    cursor: { drag: { x: false, y: false } },
    legend: { live: width >= 500 }, // values on hover where there is a pointer and room
    scales: { x: { time: true } },
    axes: [
      { stroke: "#4b5563", grid: { stroke: "#e5e7eb" } },
      { label: "licenses", stroke: "#4b5563", grid: { stroke: "#e5e7eb" } },
    ],
    series: [
      {},
      line("total", COLORS.total, sparse, { dash: [6, 4] }),
      line("used", COLORS.used, sparse, { fill: "rgba(37, 99, 235, 0.12)" }),
      line("peak used", COLORS.peak, sparse, { width: 1 }),
      line("booked", COLORS.booked, sparse),
      line("reserved", COLORS.reserved, sparse),
      {
        label: "refused",
        stroke: COLORS.refused,
        fill: "rgba(220, 38, 38, 0.35)",
        width: 1,
        // adjacent full-width bars form the refused bucket's block; 4 px at least, so a
        // refusal in the last minutes still shows
        paths: uPlot.paths.bars({ size: [1, Infinity, 4] }),
        points: { show: false },
      },
    ],
  };
  return new uPlot(options, data, container);
}
