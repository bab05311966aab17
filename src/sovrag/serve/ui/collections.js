// Collections (create, delete, pick) and the picked collection's documents (list, delete).

import { api } from './api.js';
import { $, announce, fmtBytes, h } from './dom.js';
import { forgetHistory } from './history.js';
import { initUpload } from './upload.js';

let app;

function collectionItem(c) {
  const current = c.name === app.state.current;
  return h('li', { class: current ? 'collection current' : 'collection' },
    h('button', {
      type: 'button', class: 'collection-pick', 'aria-pressed': current ? 'true' : 'false',
      onclick: () => app.select(c.name),
    }, h('span', { class: 'collection-name' }, c.name),
    h('span', { class: 'hint' }, `${c.documents} document${c.documents === 1 ? '' : 's'}, ${c.chunks} chunk${c.chunks === 1 ? '' : 's'}`)),
    h('button', {
      type: 'button', class: 'danger small', 'aria-label': `Delete collection ${c.name}`,
      onclick: () => deleteCollection(c.name),
    }, 'Delete'));
}

async function deleteCollection(name) {
  if (!window.confirm(`Delete the collection "${name}" and all its documents? This cannot be undone.`)) return;
  $('#collection-error').textContent = '';
  try {
    await api(`/v1/collections/${encodeURIComponent(name)}`, { method: 'DELETE' });
    forgetHistory(app.state.tenantId, name);
    announce(`Collection ${name} deleted`);
    if (app.state.current === name) app.state.current = null;
    await app.loadCollections();
  } catch (e) {
    $('#collection-error').textContent = e.message;
  }
}

export async function loadDocuments() {
  const name = app.state.current;
  const section = $('#documents');
  section.hidden = !name;
  if (!name) return;
  $('#documents-title').textContent = `Documents in ${name}`;
  const body = $('#document-table tbody');
  $('#documents-error').textContent = '';
  try {
    const docs = (await api(`/v1/collections/${encodeURIComponent(name)}/documents?raw=true`)).data;
    if (app.state.current !== name) return; // the user picked another collection meanwhile
    body.replaceChildren(...docs.map((d) => h('tr', {},
      h('th', { scope: 'row' }, d.name),
      h('td', {}, d.status === 'indexed' ? (d.title || '')
        : h('span', { class: d.status === 'failed' ? 'error' : 'hint' },
          d.status === 'failed' ? `Not indexed: ${d.error || 'ingestion failed'}` : 'Processing…')),
      h('td', {}, d.format || ''),
      h('td', {}, String(d.chunks)), h('td', {}, fmtBytes(d.bytes)),
      h('td', {}, h('button', {
        type: 'button', class: 'danger small', 'aria-label': `Delete document ${d.name}`,
        onclick: () => deleteDocument(name, d),
      }, 'Delete')))));
    $('#documents-empty').hidden = docs.length > 0;
    $('#document-table').hidden = docs.length === 0;
  } catch (e) {
    $('#documents-error').textContent = `Could not list the documents: ${e.message}`;
  }
}

async function deleteDocument(collection, doc) {
  if (!window.confirm(`Delete "${doc.name}" from ${collection}?`)) return;
  try {
    await api(`/v1/collections/${encodeURIComponent(collection)}/documents/${encodeURIComponent(doc.id)}`,
      { method: 'DELETE' });
    announce(`${doc.name} deleted`);
  } catch (e) {
    $('#documents-error').textContent = `Could not delete ${doc.name}: ${e.message}`;
  }
  await app.loadCollections();
}

/** Re-render the list from app.state; called whenever the collections change. */
export function refreshCollections() {
  const list = $('#collection-list');
  list.replaceChildren(...app.state.collections.map(collectionItem));
  $('#collection-empty').hidden = app.state.collections.length > 0;
  loadDocuments();
}

export function initCollections(theApp) {
  app = theApp;
  $('#collection-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('#collection-name');
    const name = input.value.trim();
    const error = $('#collection-error');
    error.textContent = '';
    if (!name) { error.textContent = 'Give the collection a name.'; input.focus(); return; }
    const button = e.target.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await api('/v1/collections', { method: 'POST', json: { name } });
      input.value = '';
      announce(`Collection ${name} created`);
      app.state.current = name;
      await app.loadCollections();
    } catch (err) {
      error.textContent = err.message;
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  initUpload(app, { afterIngest: () => app.loadCollections() });
}
