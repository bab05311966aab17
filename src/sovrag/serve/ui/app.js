// Entry point: sign-in with an API key (sessionStorage only), the three views behind #/chat,
// #/collections and #/evals, and the state they share (the tenant, its collections, the picked one: remembered
// per tenant in localStorage, as the conversations are).

import { ApiError, NETWORK_MESSAGE, api, clearSession, getKey, onUnauthorized, setKey } from './api.js';
import { initChat, refreshChat, stopChat } from './chat.js';
import { closeSource, initCitations } from './citations.js';
import { initCollections, refreshCollections } from './collections.js';
import { $, announce } from './dom.js';
import { loadModels, resetModels } from './models.js';
import { initReports, loadReports, resetReports } from './reports.js';

const VIEWS = ['chat', 'collections', 'evals'];
const CURRENT = 'sovrag.current.t';

const state = { tenant: null, tenantId: null, keyId: null, limits: null, collections: [], current: null };

function remember(name) {
  if (state.tenantId === null) return;
  try { localStorage.setItem(CURRENT + state.tenantId, name); } catch { /* storage disabled */ }
}

function remembered() {
  try { return localStorage.getItem(CURRENT + state.tenantId); } catch { return null; }
}

const app = {
  state,

  /** Fetch the tenant's collections and re-render whatever shows them. */
  async loadCollections() {
    try {
      state.collections = (await api('/v1/collections')).data;
      $('#collection-error').textContent = '';
    } catch (e) {
      if (e.status === 401) return;
      $('#collection-error').textContent = `Could not list the collections: ${e.message}`;
      $('#chat-error').textContent = `Could not list the collections: ${e.message}`;
    }
    if (!state.collections.some((c) => c.name === state.current)) {
      state.current = state.collections.length ? state.collections[0].name : null;
    }
    if (state.current) remember(state.current);
    refreshChat();
    refreshCollections();
  },

  select(name) {
    state.current = name;
    remember(name);
    refreshChat();
    refreshCollections();
  },
};

function viewFromHash() {
  const name = (location.hash || '').replace(/^#\/?/, '');
  return VIEWS.includes(name) ? name : 'chat';
}

function showView(name, { focus = false } = {}) {
  for (const v of ['signin', ...VIEWS]) $(`#view-${v}`).hidden = v !== name;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (name !== 'chat') closeSource();
  if (name === 'evals') loadReports();
  document.title = `sovrag – ${{ signin: 'Sign in', chat: 'Chat', collections: 'Collections', evals: 'Evaluations' }[name]}`;
  if (focus) {
    const heading = $(`#view-${name} h1`);
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
}

function signedInChrome(on) {
  $('#nav').hidden = !on;
  $('#who').hidden = !on;
  $('#tenant-name').textContent = on ? `Tenant: ${state.tenant}` : '';
}

async function signIn(key) {
  const me = await api('/v1/tenant', { key, timeout: 15000 });
  setKey(key);
  Object.assign(state, { tenant: me.name, tenantId: me.id, keyId: me.key_id, limits: me.limits || null });
  state.current = remembered();
  signedInChrome(true);
  $('#api-key').value = '';
  $('#signin-error').textContent = '';
  showView(viewFromHash());
  await Promise.all([app.loadCollections(), loadModels(me.id)]);
}

function signOut(message = '') {
  stopChat();
  clearSession();
  Object.assign(state, { tenant: null, tenantId: null, keyId: null, limits: null, collections: [], current: null });
  signedInChrome(false);
  resetReports();
  resetModels();
  $('#chat-log').replaceChildren();
  $('#collection-list').replaceChildren();
  $('#upload').hidden = true;
  showView('signin');
  $('#signin-error').textContent = message;
  $('#api-key').focus();
  if (message) announce(message);
}

function signInMessage(e) {
  if (e.status === 401) return `This API key was refused: ${e.message}.`;
  if (e.status === 0) return e.code === 'timeout' ? e.message : NETWORK_MESSAGE;
  return e.message;
}

function init() {
  initCitations();
  initChat(app);
  initCollections(app);
  initReports();
  onUnauthorized((e) => {
    if (state.tenant) signOut(`Your API key is no longer accepted (${e.message}). Sign in again.`);
  });

  $('#signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = $('#api-key').value.trim();
    const error = $('#signin-error');
    if (!key) { error.textContent = 'Enter your API key.'; $('#api-key').focus(); return; }
    const button = $('#signin-submit');
    button.disabled = true;
    button.textContent = 'Signing in…';
    error.textContent = '';
    try {
      await signIn(key);
      announce(`Signed in as ${state.tenant}`);
    } catch (err) {
      error.textContent = signInMessage(err instanceof ApiError ? err : new ApiError(0, String(err)));
      $('#api-key').focus();
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });
  $('#sign-out').addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', () => { if (state.tenant) showView(viewFromHash(), { focus: true }); });

  const saved = getKey();
  if (!saved) { showView('signin'); return; }
  showView('signin');
  signIn(saved).catch((err) => {
    if (err.status === 401) { signOut(signInMessage(err)); return; }
    $('#api-key').value = saved; // the server may just be down: keep the key for another try
    $('#signin-error').textContent = signInMessage(err);
  });
}

init();
