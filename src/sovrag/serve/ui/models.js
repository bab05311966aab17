// The LLM that writes the chat's answers, when the server offers several: GET /v1/models lists them (`kind: "llm"`,
// the first is the server's default). The "Model" picker shows only with more than one; the choice is remembered
// per tenant in localStorage and sent as `sovrag.llm` only when it is not the default. Also the short name of the
// model that wrote an answer (its final `sovrag.model`, e.g. "llamacpp:qwen2.5-coder-0.5b-instruct-q4_k_m").

import { api } from './api.js';
import { $, h } from './dom.js';

const PREFIX = 'sovrag.llm.t';

let tenantId = null;
let llms = []; // the ids /v1/models lists, the default first
let loading = 0; // which load is the latest: an older one finishing late changes nothing

const key = () => PREFIX + tenantId;

function remembered() {
  try { return localStorage.getItem(key()); } catch { return null; }
}

function remember(id) {
  try {
    if (id && id !== llms[0]) localStorage.setItem(key(), id); else localStorage.removeItem(key());
  } catch { /* storage disabled or full: the choice still applies in this page */ }
}

function render(listed = false) {
  const select = $('#chat-llm');
  let chosen = tenantId === null ? null : remembered();
  if (listed && chosen !== null && !llms.includes(chosen)) { // no longer offered: the default, and forget it
    remember(null);
    chosen = null;
  }
  const several = llms.length > 1;
  $('#chat-llm-pick').hidden = !several;
  if (!several) { select.replaceChildren(); return; }
  select.replaceChildren(...llms.map((id, i) => h('option', { value: id }, i === 0 ? `${id} (default)` : id)));
  select.value = chosen || llms[0];
}

/** Fetch the LLMs the server offers for this tenant (at sign-in, and when one named is refused). */
export async function loadModels(tenant) {
  tenantId = tenant;
  const mine = ++loading;
  let ids = [];
  let listed = false;
  try {
    const list = await api('/v1/models', { timeout: 15000 });
    ids = (Array.isArray(list && list.data) ? list.data : [])
      .filter((m) => m && m.kind === 'llm' && typeof m.id === 'string' && m.id)
      .map((m) => m.id);
    listed = true;
  } catch { /* not listed (network, an older server): the server's default, nothing shown, nothing forgotten */ }
  if (mine !== loading || tenantId !== tenant) return; // signed out or loaded again meanwhile
  llms = [...new Set(ids)];
  render(listed);
}

/** Signed out: no picker, nothing remembered in this page (the stored choice stays for the next sign-in). */
export function resetModels() {
  loading++;
  tenantId = null;
  llms = [];
  render();
}

/** `{llm}` for the next question when a model other than the default is picked, else `{}`. */
export function llmOption() {
  if (llms.length < 2) return {};
  const id = $('#chat-llm').value;
  return id && id !== llms[0] && llms.includes(id) ? { llm: id } : {};
}

/** The name to show for a model spec: "llamacpp:/models/qwen.gguf" -> "qwen", "llamacpp:qwen" -> "qwen". */
export function modelName(spec) {
  let name = String(spec).trim().replace(/^[a-z][a-z0-9+.-]*:(?!\/\/)/i, '');
  if (/\.gguf$/i.test(name)) name = name.replace(/^.*[/\\]/, '').replace(/\.gguf$/i, '');
  return name || String(spec);
}

export function initModels() {
  $('#chat-llm').addEventListener('change', (e) => remember(e.target.value));
}
