// Saved `sovrag eval` / `sovrag bench` / `sovrag tune` runs on the tenant's collections, each opening its HTML report.
// The report is fetched with the key and shown in a sandboxed frame: it can run no script and cannot
// reach this page's storage (where the key is).

import { api, request } from './api.js';
import { $, announce, fmtDate, h } from './dom.js';

let current = null; // {run, html}
let opener = null;

function fmtMetric(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v !== 'number') return String(v);
  return Math.abs(v) >= 100 || Number.isInteger(v) ? String(v) : v.toFixed(3);
}

function metricList(metrics) {
  const entries = Object.entries(metrics || {});
  if (!entries.length) return '';
  return h('ul', { class: 'metrics' }, entries.map(([k, v]) => h('li', {}, h('span', { class: 'metric-name' }, k),
    ' ', h('span', { class: 'metric-value' }, fmtMetric(v)))));
}

async function openReport(run, button) {
  const error = $('#evals-error');
  error.textContent = '';
  button.disabled = true;
  try {
    const res = await request(`/v1/reports/${encodeURIComponent(run.id)}/report.html`, { accept: 'text/html', timeout: 60000 });
    const html = await res.text();
    current = { run, html };
    opener = button;
    $('#report-title').textContent = `Report: ${run.title || run.id}`;
    $('#report-frame').srcdoc = html;
    $('#report-viewer').hidden = false;
    $('#report-title').focus();
    $('#report-viewer').scrollIntoView({ block: 'start' });
    announce(`Report ${run.title || run.id} opened`);
  } catch (e) {
    error.textContent = `Could not open the report of ${run.id}: ${e.message}`;
  } finally {
    button.disabled = false;
  }
}

function closeReport() {
  $('#report-viewer').hidden = true;
  $('#report-frame').srcdoc = '';
  current = null;
  if (opener && opener.isConnected) opener.focus();
}

function download() {
  if (!current) return;
  const url = URL.createObjectURL(new Blob([current.html], { type: 'text/html' }));
  const a = h('a', { href: url, download: `${current.run.id}.html` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function loadReports() {
  const error = $('#evals-error');
  error.textContent = '';
  const body = $('#evals-table tbody');
  try {
    const runs = (await api('/v1/reports')).data;
    body.replaceChildren(...runs.map((run) => h('tr', {},
      h('th', { scope: 'row' }, run.title || run.id, h('div', { class: 'hint' }, run.id)),
      h('td', {}, run.kind), h('td', {}, run.collection), h('td', {}, fmtDate(run.created)),
      h('td', {}, metricList(run.metrics)),
      h('td', {}, h('button', {
        type: 'button', class: 'small', 'aria-label': `Open the report of ${run.title || run.id}`,
        onclick: (e) => openReport(run, e.currentTarget),
      }, 'Open report')))));
    $('#evals-empty').hidden = runs.length > 0;
    $('#evals-table').hidden = runs.length === 0;
  } catch (e) {
    error.textContent = `Could not list the runs: ${e.message}`;
  }
}

export function initReports() {
  $('#evals-refresh').addEventListener('click', loadReports);
  $('#report-close').addEventListener('click', closeReport);
  $('#report-download').addEventListener('click', download);
  $('#report-viewer').addEventListener('keydown', (e) => { if (e.key === 'Escape') closeReport(); });
}

export function resetReports() { closeReport(); $('#evals-table tbody').replaceChildren(); }
