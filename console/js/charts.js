// Small SVG charts. Each is an image with a text alternative that lists its figures.

import { h } from "./dom.js";

const WIDTH = 560;
const BAR_AREA = 170;
const COLORS = ["#1f4e8c", "#d9822b", "#2e8540", "#8e44ad", "#c0392b", "#16a085"];

function describe(title, rows) {
  return `${title}: ${rows.join("; ")}`;
}

/**
 * A vertical bar chart of [{label, value}]: returns a <figure> with the SVG and a caption.
 */
export function barChart({ title, data, unit = "", format = (v) => `${v}` }) {
  const max = Math.max(1e-9, ...data.map((d) => d.value));
  const step = data.length ? WIDTH / data.length : WIDTH;
  const barWidth = Math.max(4, Math.min(48, step * 0.7));
  const svg = h("svg:svg", {
    viewBox: `0 0 ${WIDTH} ${BAR_AREA + 40}`,
    role: "img",
    "aria-label": describe(title, data.map((d) => `${d.label} ${format(d.value)}${unit}`)),
    class: "chart",
  });
  data.forEach((d, i) => {
    const height = (d.value / max) * BAR_AREA;
    const x = i * step + (step - barWidth) / 2;
    svg.append(
      h(
        "svg:rect",
        { x, y: BAR_AREA - height + 10, width: barWidth, height: Math.max(height, 0), fill: COLORS[0] },
        h("svg:title", {}, `${d.label}: ${format(d.value)}${unit}`),
      ),
      h("svg:text", { x: x + barWidth / 2, y: BAR_AREA + 26, "text-anchor": "middle", class: "axis" }, d.label),
    );
    if (d.value > 0) {
      svg.append(
        h("svg:text", { x: x + barWidth / 2, y: BAR_AREA - height + 6, "text-anchor": "middle", class: "value" }, format(d.value)),
      );
    }
  });
  return h("figure", { class: "chart-figure" }, svg, h("figcaption", {}, title));
}

/**
 * Horizontal stacked bars: rows [{label, parts: [{name, value}], total}]; one color per part
 * name, with a legend. Used for per-turn latency (stages of a turn).
 */
export function stackedBars({ title, rows, unit = " ms" }) {
  const names = [...new Set(rows.flatMap((r) => r.parts.map((p) => p.name)))];
  const color = (name) => COLORS[names.indexOf(name) % COLORS.length];
  const max = Math.max(1e-9, ...rows.map((r) => Math.max(r.total ?? 0, r.parts.reduce((s, p) => s + p.value, 0))));
  const rowHeight = 22;
  const left = 70;
  const plot = WIDTH - left - 70;
  const height = rows.length * rowHeight + 8;
  const svg = h("svg:svg", {
    viewBox: `0 0 ${WIDTH} ${height}`,
    role: "img",
    class: "chart",
    "aria-label": describe(
      title,
      rows.map((r) => `${r.label}: ${r.parts.map((p) => `${p.name} ${Math.round(p.value)}${unit}`).join(", ")}${r.total !== undefined ? `, total ${Math.round(r.total)}${unit}` : ""}`),
    ),
  });
  rows.forEach((row, i) => {
    const y = i * rowHeight + 4;
    let x = left;
    svg.append(h("svg:text", { x: left - 6, y: y + 14, "text-anchor": "end", class: "axis" }, row.label));
    for (const part of row.parts) {
      const width = (part.value / max) * plot;
      svg.append(
        h("svg:rect", { x, y, width: Math.max(width, 0), height: rowHeight - 6, fill: color(part.name) },
          h("svg:title", {}, `${row.label} ${part.name}: ${Math.round(part.value)}${unit}`)),
      );
      x += width;
    }
    if (row.total !== undefined) {
      svg.append(h("svg:text", { x: left + (row.total / max) * plot + 4, y: y + 14, class: "value" }, `${Math.round(row.total)}${unit}`));
    }
  });
  const legend = h("ul", { class: "legend" },
    names.map((name) => h("li", {}, h("span", { class: "swatch", dataset: { color: color(name) } }), name)));
  for (const swatch of legend.querySelectorAll(".swatch")) swatch.style.background = swatch.dataset.color;
  return h("figure", { class: "chart-figure" }, svg, legend, h("figcaption", {}, title));
}
