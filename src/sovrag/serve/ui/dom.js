// Small DOM helpers. Text from the server always goes in as text nodes, never as HTML.

export const $ = (sel, root = document) => root.querySelector(sel);

/** h('button', {type: 'button', onclick: fn, class: 'x'}, 'text', childNode, ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Say something to screen-reader users without moving focus. */
export function announce(message) {
  const el = $('#announcer');
  el.textContent = '';
  setTimeout(() => { el.textContent = message; }, 50);
}

export function showError(el, message) {
  el.textContent = message || '';
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function fmtDate(value) {
  if (!value) return '';
  const d = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
