// Retrieval settings of the chat: how many passages to retrieve (top_k, 1-50) and the search mode, sent with each
// question as `sovrag: {top_k, mode}`; empty means the server's default. Remembered in localStorage.

import { $, announce } from './dom.js';

const KEY = 'sovrag.retrieval';
const MODES = ['hybrid', 'dense', 'bm25'];
const MODE_NAMES = { hybrid: 'hybrid', dense: 'dense', bm25: 'BM25' };
const TOP_K_MESSAGE = 'Passages to retrieve: enter a whole number from 1 to 50, or leave it empty for the server’s default.';

function load() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY)) || {};
    const out = {};
    if (Number.isInteger(v.top_k) && v.top_k >= 1 && v.top_k <= 50) out.top_k = v.top_k;
    if (MODES.includes(v.mode)) out.mode = v.mode;
    return out;
  } catch {
    return {};
  }
}

function store(v) {
  try {
    if (Object.keys(v).length) localStorage.setItem(KEY, JSON.stringify(v)); else localStorage.removeItem(KEY);
  } catch { /* storage disabled or full: the settings still apply in this page */ }
}

/** The top_k typed in, `null` when empty, `undefined` when not valid. */
function typedTopK() {
  const input = $('#setting-top-k');
  if (input.validity.badInput) return undefined;
  const raw = input.value.trim();
  if (!raw) return null;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 1 && n <= 50 ? n : undefined;
}

function summarize(v) {
  const parts = [];
  if (v.top_k) parts.push(`${v.top_k} passage${v.top_k === 1 ? '' : 's'}`);
  if (v.mode) parts.push(`${MODE_NAMES[v.mode]} search`);
  $('#settings-summary').textContent = parts.length ? `(${parts.join(', ')})` : '(server defaults)';
}

function read() {
  const top = typedTopK();
  const invalid = top === undefined;
  const input = $('#setting-top-k');
  input.setAttribute('aria-invalid', invalid ? 'true' : 'false');
  $('#settings-error').textContent = invalid ? TOP_K_MESSAGE : '';
  const v = {};
  if (top) v.top_k = top;
  const mode = $('#setting-mode').value;
  if (MODES.includes(mode)) v.mode = mode;
  return { v, invalid };
}

function changed() {
  const { v, invalid } = read();
  if (invalid) return;
  store(v);
  summarize(v);
}

/**
 * The `sovrag` options of the next question: `{top_k?, mode?}`; throws an Error with a message to show when the
 * number typed in is not valid (the question is then not sent).
 */
export function retrievalOptions() {
  const { v, invalid } = read();
  if (invalid) {
    const details = $('#chat-settings');
    details.open = true;
    throw new Error(TOP_K_MESSAGE);
  }
  return v;
}

export function initSettings() {
  const v = load();
  $('#setting-top-k').value = v.top_k ? String(v.top_k) : '';
  $('#setting-mode').value = v.mode || '';
  summarize(v);
  $('#setting-top-k').addEventListener('input', changed);
  $('#setting-mode').addEventListener('change', changed);
  $('#settings-reset').addEventListener('click', () => {
    $('#setting-top-k').value = '';
    $('#setting-mode').value = '';
    changed();
    announce('Retrieval settings reset to the server’s defaults');
  });
}
