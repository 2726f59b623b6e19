// Building the page without innerHTML: every text the API returns goes in as a text node.

let nextId = 0;

/** Return a fresh element id with the given prefix. */
export function uid(prefix = "el") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * Create an element: h("button", {type: "button", onclick: fn, class: "x"}, "Text", child).
 * Attributes named on* become listeners; `dataset` sets data-*; false/null skip an attribute.
 */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "value" && !svg) {
      el.value = value;
    } else if (name === "checked" || name === "selected" || name === "disabled") {
      el[name] = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children (strings, numbers, nodes, arrays of them; null skipped). */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A labelled form control: returns [wrapper, control]. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid("f");
  const parts = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintId = uid("hint");
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return [h("div", { class: "field" }, parts), control];
}

/** A <select> of options: [[value, label], ...] or plain values. */
export function select(options, attrs = {}) {
  return h(
    "select",
    attrs,
    options.map((option) => {
      const [value, label] = Array.isArray(option) ? option : [option, option];
      return h("option", { value, selected: attrs.value === value }, label);
    }),
  );
}

/** A table from column definitions [{label, cell(row)}] and rows. */
export function table(columns, rows, attrs = {}) {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
    h(
      "tbody",
      {},
      rows.map((row) => h("tr", {}, columns.map((c) => h("td", {}, c.cell(row))))),
    ),
  );
}

/** Format a number of seconds, bytes, dollars or an ISO time for people. */
export const format = {
  ms: (value) => (value === null || value === undefined ? "—" : `${Math.round(value)} ms`),
  seconds: (value) => (value === null || value === undefined ? "—" : `${value.toFixed(2)} s`),
  bytes(value) {
    if (value === null || value === undefined) return "—";
    if (value < 1024) return `${value} B`;
    if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
    return `${(value / 1024 / 1024).toFixed(1)} MiB`;
  },
  dollars: (value) => (value === null || value === undefined ? "—" : `$${value.toFixed(6)}`),
  score: (value) => (value === null || value === undefined ? "—" : value.toFixed(2)),
  time(value) {
    if (!value) return "never";
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
  },
};
