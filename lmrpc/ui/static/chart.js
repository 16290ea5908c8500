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

// Points on the history's time axis; refusals are matched to them by bucket time.
export function series(history, refusals) {
  const refused = new Map();
  for (const r of refusals) {
    const t = seconds(r.t);
    refused.set(t, (refused.get(t) || 0) + r.refused_licenses);
  }
  const times = [...new Set([...history.map((p) => seconds(p.t)), ...refused.keys()])].sort((a, b) => a - b);
  const byTime = new Map(history.map((p) => [seconds(p.t), p]));
  const pick = (field) => times.map((t) => (byTime.has(t) ? byTime.get(t)[field] : null));
  return [
    times,
    pick("total"),
    pick("used"),
    pick("peak_used"),
    pick("booked"),
    pick("reserved"),
    times.map((t) => refused.get(t) ?? null),
  ];
}

function line(label, stroke, extra = {}) {
  return { label, stroke, width: 2, spanGaps: true, ...extra };
}

export function draw(container, data) {
  container.replaceChildren();
  const width = Math.max(280, container.clientWidth);
  const options = {
    width,
    height: width < 500 ? 220 : 300,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true } },
    axes: [
      { stroke: "#4b5563", grid: { stroke: "#e5e7eb" } },
      { label: "licenses", stroke: "#4b5563", grid: { stroke: "#e5e7eb" } },
    ],
    series: [
      {},
      line("total", COLORS.total, { dash: [6, 4] }),
      line("used", COLORS.used, { fill: "rgba(37, 99, 235, 0.12)" }),
      line("peak used", COLORS.peak, { width: 1 }),
      line("booked", COLORS.booked),
      line("reserved", COLORS.reserved),
      {
        label: "refused",
        stroke: COLORS.refused,
        fill: "rgba(220, 38, 38, 0.55)",
        paths: uPlot.paths.bars({ size: [0.6, 24] }),
        points: { show: false },
      },
    ],
  };
  return new uPlot(options, data, container);
}
