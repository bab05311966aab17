// Drag-and-drop upload of many files: batches within the server's limits, upload progress, then each
// batch's ingestion job polled until it ends, with every file's own outcome (ingested, rejected, failed).

import { ApiError, api, upload } from './api.js';
import { $, announce, fmtBytes, h, sleep } from './dom.js';

const POLL_MS = 700;
const STALL_MS = 10 * 60 * 1000; // a job that shows no progress for this long is given up on
const MAX_POLL_ERRORS = 5; // consecutive failed polls (network, server restart) before giving up
const REJECTED_PREFIX = 'upload: no file accepted: ';

let app;
let afterIngest = () => {};
let active = 0;

class Row {
  constructor(file) {
    this.file = file;
    this.progress = 0; // 0..1 of this file's way through upload and ingestion
    this.status = h('span', { class: 'file-status' }, 'waiting');
    this.el = h('li', { class: 'file waiting' }, h('span', { class: 'file-name' }, file.name),
      h('span', { class: 'hint' }, fmtBytes(file.size)), this.status);
  }

  set(state, text, progress) {
    this.el.className = `file ${state}`;
    this.status.textContent = text;
    if (progress !== undefined) this.progress = progress;
  }
}

function limits() {
  const l = app.state.limits || {};
  return {
    files: l.max_upload_files || 100,
    bytes: (l.max_upload_request_mb || 200) * 2 ** 20 * 0.95 - 64 * 1024, // room for the multipart framing
  };
}

/** Groups of rows, each within the server's per-request file count and size. */
function batches(rows) {
  const { files, bytes } = limits();
  const out = [];
  let cur = [];
  let size = 0;
  for (const r of rows) {
    if (cur.length && (cur.length >= files || size + r.file.size > bytes)) { out.push(cur); cur = []; size = 0; }
    cur.push(r);
    size += r.file.size;
  }
  if (cur.length) out.push(cur);
  return out;
}

let rowsShown = [];
function showProgress(text) {
  const total = rowsShown.length;
  const bar = $('#upload-bar');
  bar.max = total || 1;
  bar.value = rowsShown.reduce((sum, r) => sum + r.progress, 0);
  if (text) $('#upload-summary').textContent = text;
}

/** Poll a job until it ends; tolerates a few failed polls, gives up on a stalled job. */
async function pollJob(jobId, onUpdate) {
  let errors = 0;
  let lastDone = -1;
  let lastChange = Date.now();
  for (;;) {
    try {
      const job = await api(`/v1/jobs/${encodeURIComponent(jobId)}`, { timeout: 15000 });
      errors = 0;
      onUpdate(job);
      if (job.state !== 'queued' && job.state !== 'running') return job;
      if (job.files_done !== lastDone) { lastDone = job.files_done; lastChange = Date.now(); }
      if (Date.now() - lastChange > STALL_MS) {
        throw new ApiError(0, `no progress for ${STALL_MS / 60000} minutes; check the documents list later`, 'stalled');
      }
    } catch (e) {
      if (e.status === 401 || e.status === 404 || e.code === 'stalled') throw e;
      errors += 1;
      if (errors >= MAX_POLL_ERRORS) {
        throw new ApiError(0, `lost contact with the server while ingesting (${e.message}) The job may still `
          + 'finish: check the documents list later.', 'network_error');
      }
    }
    await sleep(POLL_MS * (1 + errors));
  }
}

/** The per-file reasons of a refused upload, in upload order, when the message carries one per file. */
function reasonsFor(e, batch) {
  if (e.message.startsWith(REJECTED_PREFIX)) {
    const parts = e.message.slice(REJECTED_PREFIX.length).split('; ');
    if (parts.length === batch.length) return parts;
  }
  return batch.map(() => e.message);
}

async function runBatch(collection, batch, counts) {
  const url = `/v1/collections/${encodeURIComponent(collection)}/documents`;
  for (const r of batch) r.set('busy', 'uploading', 0);
  let res;
  try {
    res = await upload(url, batch.map((r) => r.file), (p) => {
      for (const r of batch) r.set('busy', `uploading ${Math.round(p * 100)}%`, p * 0.3);
      showProgress();
    });
  } catch (e) {
    const reasons = reasonsFor(e, batch);
    batch.forEach((r, i) => { r.set('error', reasons[i], 1); counts.rejected += 1; });
    return;
  }
  const byName = new Map();
  const accepted = [];
  res.files.forEach((f, i) => {
    const r = batch[i];
    if (f.status === 'rejected') { r.set('error', f.reason, 1); counts.rejected += 1; return; }
    r.set('busy', 'queued for ingestion', 0.3);
    byName.set(f.name, r);
    accepted.push(r);
  });
  showProgress();
  let job;
  try {
    job = await pollJob(res.id, (j) => {
      const frac = j.files_total ? j.files_done / j.files_total : 0;
      const text = j.state === 'queued' ? 'queued for ingestion' : `ingesting (${j.files_done} of ${j.files_total} done)`;
      for (const r of accepted) r.set('busy', text, 0.3 + 0.7 * frac);
      showProgress(`Ingesting into ${collection}: ${j.files_done} of ${j.files_total} files of this batch done`);
    });
  } catch (e) {
    for (const r of accepted) { r.set('error', e.message, 1); counts.failed += 1; }
    return;
  }
  if (job.state !== 'succeeded') {
    for (const r of accepted) { r.set('error', `ingestion ${job.state}: ${job.error || 'no reason given'}`, 1); }
    counts.failed += accepted.length;
    return;
  }
  const failures = new Map((job.report.failures || []).map((f) => [f.file, f.reason]));
  for (const [name, r] of byName) {
    if (failures.has(name)) { r.set('error', failures.get(name), 1); counts.failed += 1; } else {
      r.set('ok', 'ingested', 1);
      counts.ok += 1;
    }
  }
}

async function uploadFiles(fileList) {
  const collection = app.state.current;
  const files = [...fileList];
  if (!collection || !files.length) return;
  if (!active) { rowsShown = []; $('#upload-files').replaceChildren(); }
  active += 1;
  $('#upload').hidden = false;
  const rows = files.map((f) => new Row(f));
  rowsShown.push(...rows);
  $('#upload-files').append(...rows.map((r) => r.el));
  const counts = { ok: 0, rejected: 0, failed: 0 };
  showProgress(`Uploading ${files.length} file${files.length === 1 ? '' : 's'} to ${collection}…`);
  try {
    for (const batch of batches(rows)) await runBatch(collection, batch, counts);
  } catch (e) { // a bug must not leave the rows spinning
    for (const r of rows) if (r.el.classList.contains('busy') || r.el.classList.contains('waiting')) r.set('error', e.message, 1);
  } finally {
    active -= 1;
    const parts = [`${counts.ok} ingested`];
    if (counts.rejected) parts.push(`${counts.rejected} rejected`);
    if (counts.failed) parts.push(`${counts.failed} failed`);
    const text = `Done: ${parts.join(', ')}.`;
    showProgress(text);
    announce(text);
    await afterIngest();
  }
}

export function initUpload(theApp, { afterIngest: after }) {
  app = theApp;
  afterIngest = after;
  const zone = $('#dropzone');
  const input = $('#file-input');
  input.addEventListener('change', () => { const files = [...input.files]; input.value = ''; uploadFiles(files); });
  zone.addEventListener('dragover', (e) => { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    uploadFiles(e.dataTransfer.files);
  });
  // a file dropped beside the zone must not make the browser navigate away from the app
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
}
