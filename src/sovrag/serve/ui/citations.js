// The source panel: a cited passage with its file, page and heading, the supporting sentences highlighted.

import { $, h } from './dom.js';

let opener = null;

export function sourceLabel(source) {
  const c = source.chunk || {};
  const parts = [c.source || 'unknown file'];
  if (c.page) parts.push(`page ${c.page}`);
  if (c.headings && c.headings.length) parts.push(c.headings.join(' › '));
  return parts.join(' — ');
}

/** The sources an answer cites: by its sentences, in its contradictions, or as an abstention's closest ones. */
export function citedSources(sov) {
  const cited = new Set();
  for (const s of sov.sentences || []) for (const c of s.citations || []) cited.add(c.source);
  for (const c of sov.contradictions || []) { cited.add(c.source_a); cited.add(c.source_b); }
  if (sov.abstained) for (const m of (sov.text || '').matchAll(/\[(\d+)\]/g)) cited.add(Number(m[1]));
  return (sov.sources || []).filter((s) => cited.has(s.number));
}

/** Character ranges of `needle` in `text`: exact, else ignoring differences in whitespace. */
function find(text, needle) {
  const n = (needle || '').trim();
  if (!n) return null;
  const at = text.indexOf(n);
  if (at !== -1) return [at, at + n.length];
  const words = n.split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const m = new RegExp(words.join('\\s+')).exec(text);
  return m ? [m.index, m.index + m[0].length] : null;
}

/** Nodes for `text` with each of `evidence` wrapped in <mark>; also says which sentences were not found. */
export function highlighted(text, evidence) {
  const ranges = [];
  const missing = [];
  for (const e of evidence) {
    const r = find(text, e);
    if (r) ranges.push(r); else if (e) missing.push(e);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const nodes = [];
  let pos = 0;
  for (const [start, end] of ranges) {
    if (end <= pos) continue;
    const s = Math.max(start, pos);
    if (s > pos) nodes.push(text.slice(pos, s));
    nodes.push(h('mark', {}, text.slice(s, end)));
    pos = end;
  }
  if (pos < text.length) nodes.push(text.slice(pos));
  return { nodes, missing };
}

export function closeSource() {
  const panel = $('#citation-panel');
  if (panel.hidden) return;
  panel.hidden = true;
  document.body.classList.remove('panel-open');
  if (opener && opener.isConnected) opener.focus();
  opener = null;
}

/** Show `source` (an entry of the answer's `sources`), highlighting `evidence` sentences. */
export function openSource(source, evidence, { support, from } = {}) {
  const panel = $('#citation-panel');
  const c = source.chunk || {};
  opener = from || document.activeElement;
  $('#citation-title').textContent = `Source [${source.number}]: ${c.source || 'unknown file'}`;
  const meta = $('#citation-meta');
  meta.replaceChildren();
  const row = (k, v) => { if (v !== undefined && v !== null && v !== '') meta.append(h('dt', {}, k), h('dd', {}, v)); };
  row('File', c.source);
  row('Title', c.title);
  row('Page', c.page);
  row('Section', (c.headings || []).join(' › '));
  if (typeof support === 'number') row('Support', `${Math.round(support * 100)}%`);
  const text = c.text || source.text || '';
  const { nodes, missing } = highlighted(text, evidence || []);
  $('#citation-passage').replaceChildren(...nodes);
  const ev = $('#citation-evidence');
  ev.replaceChildren();
  if (missing.length) {
    ev.append(h('p', { class: 'hint' }, 'Supporting sentence:'), ...missing.map((m) => h('blockquote', {}, h('mark', {}, m))));
  }
  panel.hidden = false;
  document.body.classList.add('panel-open');
  $('#citation-title').focus();
  const first = $('#citation-passage mark');
  if (first) first.scrollIntoView({ block: 'center' });
}

export function initCitations() {
  $('#citation-close').addEventListener('click', closeSource);
  $('#citation-panel').addEventListener('keydown', (e) => { if (e.key === 'Escape') closeSource(); });
}
