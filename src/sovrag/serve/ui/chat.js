// Chat over one collection: streamed answers through /v1/chat/completions (model "rag:<collection>"),
// verified sentences with clickable citations, abstentions and contradictions, history per collection.

import { ApiError, request } from './api.js';
import { closeSource, openSource, sourceLabel } from './citations.js';
import { $, announce, h } from './dom.js';
import { sseData } from './sse.js';

const PRIOR_MESSAGES = 6; // earlier messages sent along with a question
const STORED_MESSAGES = 40; // per collection, in sessionStorage
const HEADERS_TIMEOUT_MS = 180000; // loading the model and waiting in the LLM queue happen before the first byte
const IDLE_TIMEOUT_MS = 120000; // no event for this long while streaming: give up

let app;
let busy = false;
let asking = null; // the collection whose answer is streaming
let controller = null;

// ------------------------------------------------------------------ history (sessionStorage)
const historyKey = (col) => `sovrag.chat.${app.state.keyId}.${col}`;

function loadHistory(col) {
  try { return JSON.parse(sessionStorage.getItem(historyKey(col))) || []; } catch { return []; }
}

function saveHistory(col, history) {
  let kept = history.slice(-STORED_MESSAGES);
  while (kept.length) {
    try { sessionStorage.setItem(historyKey(col), JSON.stringify(kept)); return; } catch { kept = kept.slice(2); }
  }
  sessionStorage.removeItem(historyKey(col));
}

// ------------------------------------------------------------------ rendering
function citeButton(source, evidence, support, cls = 'cite') {
  const label = `Source ${source.number}: ${sourceLabel(source)}`;
  return h('button', {
    type: 'button', class: cls, title: label, 'aria-label': label,
    onclick: (e) => openSource(source, evidence, { support, from: e.currentTarget }),
  }, `[${source.number}]`);
}

function answerCopyText(sov) {
  const lines = [sov.text];
  const cited = new Set();
  for (const s of sov.sentences || []) for (const c of s.citations) cited.add(c.source);
  if (sov.abstained) for (const m of sov.text.matchAll(/\[(\d+)\]/g)) cited.add(Number(m[1]));
  const sources = (sov.sources || []).filter((s) => cited.has(s.number));
  if (sources.length) lines.push('', 'Sources:', ...sources.map((s) => `[${s.number}] ${sourceLabel(s)}`));
  return lines.join('\n');
}

function sourceList(sov, numbers) {
  const evidence = new Map();
  for (const s of sov.sentences || []) {
    for (const c of s.citations) evidence.set(c.source, [...(evidence.get(c.source) || []), c.evidence]);
  }
  const shown = sov.sources.filter((s) => !numbers || numbers.has(s.number));
  if (!shown.length) return null;
  return h('ol', { class: 'sources', 'aria-label': 'Sources' }, shown.map((s) => h('li', {},
    h('button', {
      type: 'button', class: 'source-link',
      onclick: (e) => openSource(s, evidence.get(s.number) || [], { from: e.currentTarget }),
    }, `[${s.number}] ${sourceLabel(s)}`))));
}

function renderAnswer(body, sov) {
  const byNumber = new Map(sov.sources.map((s) => [s.number, s]));
  body.replaceChildren();
  if (sov.abstained) {
    body.classList.add('abstained');
    const closest = new Set([...sov.text.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])));
    body.append(
      h('p', { class: 'badge badge-abstain' }, 'No answer in the documents'),
      h('p', {}, sov.text.replace(/\s*Closest sources:.*$/s, '')),
      sov.abstain_reason ? h('p', { class: 'hint' }, `Why: ${sov.abstain_reason}.`) : null,
    );
    const list = sourceList(sov, closest);
    if (list) body.append(h('p', { class: 'hint' }, 'Closest sources:'), list);
    return;
  }
  const text = h('p', { class: 'answer-text' });
  const cited = new Set();
  for (const s of sov.sentences) {
    const span = h('span', { class: s.supported ? 'sentence' : 'sentence unsupported' }, s.text);
    if (!s.supported) {
      span.title = 'Not supported by the sources';
      span.append(h('span', { class: 'visually-hidden' }, ' (not supported by the sources)'));
    }
    text.append(span);
    for (const c of s.citations) {
      const src = byNumber.get(c.source);
      if (!src) continue;
      cited.add(c.source);
      text.append(' ', citeButton(src, [c.evidence], c.support));
    }
    text.append(' ');
  }
  body.append(text);
  if (sov.contradictions && sov.contradictions.length) {
    const box = h('div', { class: 'contradiction', role: 'note' },
      h('p', { class: 'badge badge-contradiction' }, 'The sources disagree'));
    for (const c of sov.contradictions) {
      for (const [n, claim, values] of [[c.source_a, c.claim_a, c.values_a], [c.source_b, c.claim_b, c.values_b]]) {
        const src = byNumber.get(n);
        cited.add(n);
        box.append(h('p', {}, src ? citeButton(src, [claim]) : `[${n}]`, ` says ${values.join(', ')}: “${claim}”`));
      }
    }
    body.append(box);
  }
  const list = sourceList(sov, cited);
  if (list) body.append(h('p', { class: 'hint' }, 'Sources:'), list);
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch { // not a secure context (plain http on a LAN address): the old way
    const area = h('textarea', { class: 'visually-hidden', 'aria-hidden': 'true' });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
  button.textContent = 'Copied';
  announce('Answer copied');
  setTimeout(() => { button.textContent = 'Copy answer'; }, 2000);
}

function userNode(turn) {
  return h('article', { class: 'msg user', 'aria-label': 'Question' }, h('p', {}, turn.content));
}

/** An assistant message; `update(turn)` re-renders it as the stream goes on. */
function assistantNode(turn) {
  const body = h('div', { class: 'answer-body' });
  const error = h('p', { class: 'msg-error', hidden: true });
  const actions = h('div', { class: 'msg-actions' });
  const el = h('article', { class: 'msg assistant', 'aria-label': 'Answer' }, body, error, actions);
  const update = (t, { streaming = false } = {}) => {
    el.classList.toggle('streaming', streaming);
    if (t.sovrag) renderAnswer(body, t.sovrag);
    else if (t.content) body.replaceChildren(h('p', { class: 'answer-text' }, t.content));
    else if (streaming) body.replaceChildren(h('p', { class: 'thinking' }, 'Searching the documents and writing…'));
    else body.replaceChildren();
    error.hidden = !t.error;
    error.textContent = t.error || '';
    actions.replaceChildren();
    if (!streaming && (t.sovrag || t.content)) {
      const text = t.sovrag ? answerCopyText(t.sovrag) : t.content;
      actions.append(h('button', {
        type: 'button', class: 'secondary small', onclick: (e) => copy(text, e.currentTarget),
      }, 'Copy answer'));
    }
  };
  update(turn);
  return { el, update };
}

function renderLog() {
  const log = $('#chat-log');
  log.replaceChildren();
  const col = app.state.current;
  if (!col) return;
  for (const turn of loadHistory(col)) log.append(turn.role === 'user' ? userNode(turn) : assistantNode(turn).el);
  log.scrollTop = log.scrollHeight;
}

// ------------------------------------------------------------------ asking
function setBusy(on) {
  busy = on;
  $('#chat-send').disabled = on;
  $('#chat-send').textContent = on ? 'Answering…' : 'Ask';
  $('#chat-stop').hidden = !on;
  $('#chat-collection').disabled = on;
  $('#chat-clear').disabled = on;
  $('#chat-log').setAttribute('aria-busy', on ? 'true' : 'false');
}

function explain(e, col) {
  if (e.code === 'aborted') return 'Stopped. What had arrived is kept above.';
  if (e.status === 404 && e.code === 'model_not_found') return `The collection "${col}" no longer exists.`;
  return e.message || String(e);
}

async function ask(question) {
  const col = app.state.current;
  if (busy || !col || !question.trim()) return;
  $('#chat-error').textContent = '';
  const history = loadHistory(col);
  const prior = history.filter((t) => t.content && !t.error).slice(-PRIOR_MESSAGES)
    .map((t) => ({ role: t.role, content: t.content }));
  const userTurn = { role: 'user', content: question.trim() };
  history.push(userTurn);
  const turn = { role: 'assistant', content: '' };
  const log = $('#chat-log');
  const node = assistantNode(turn);
  log.append(userNode(userTurn), node.el);
  node.update(turn, { streaming: true });
  log.scrollTop = log.scrollHeight;
  setBusy(true);
  asking = col;
  const keyId = app.state.keyId;
  controller = new AbortController();
  let final = null;
  try {
    const res = await request('/v1/chat/completions', {
      method: 'POST', timeout: HEADERS_TIMEOUT_MS, signal: controller.signal, accept: 'text/event-stream',
      json: { model: `rag:${col}`, stream: true, messages: [...prior, userTurn], sovrag: { raw: true } },
    });
    let finished = false;
    let streamError = null;
    for await (const data of sseData(res, { idleMs: IDLE_TIMEOUT_MS, signal: controller.signal })) {
      if (data === '[DONE]') { finished = true; break; }
      let event;
      try { event = JSON.parse(data); } catch { continue; }
      if (event.error) { streamError = new ApiError(500, event.error.message, event.error.code); continue; }
      const delta = event.choices && event.choices[0] && event.choices[0].delta;
      if (delta && delta.content) {
        turn.content += delta.content;
        node.update(turn, { streaming: true });
        log.scrollTop = log.scrollHeight;
      }
      if (event.sovrag) final = event.sovrag;
    }
    if (streamError) throw streamError;
    if (!finished && !final) {
      throw new ApiError(0, 'The connection closed before the answer was complete (the server may have restarted). '
        + 'Ask again.', 'incomplete');
    }
    if (final) {
      turn.content = final.text;
      turn.sovrag = final;
    }
  } catch (e) {
    turn.error = explain(e, col);
    if (!(e instanceof ApiError)) console.error(e);
  } finally {
    controller = null;
    asking = null;
    history.push(turn);
    if (app.state.keyId === keyId) saveHistory(col, history); // not after a sign-out
    node.update(turn);
    setBusy(false);
    if (app.state.current !== col) renderLog(); // another collection was picked meanwhile
    log.scrollTop = log.scrollHeight;
    announce(turn.error ? `The answer failed: ${turn.error}` : (final && final.abstained
      ? 'No answer found in the documents.' : 'Answer ready.'));
  }
}

// ------------------------------------------------------------------ view
/** Fill the collection picker from app.state; called whenever the collections change. */
export function refreshChat() {
  const select = $('#chat-collection');
  const names = app.state.collections.map((c) => c.name);
  select.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
  select.value = app.state.current || '';
  const none = names.length === 0;
  $('#chat-empty').hidden = !none;
  $('#chat-input').disabled = none;
  $('#chat-send').disabled = none || busy;
  if (!(asking && asking === app.state.current)) renderLog(); // never wipe the answer being streamed
}

export function initChat(theApp) {
  app = theApp;
  $('#chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('#chat-input');
    const q = input.value;
    if (!q.trim()) { $('#chat-error').textContent = 'Type a question first.'; input.focus(); return; }
    input.value = '';
    ask(q);
  });
  $('#chat-input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('#chat-form').requestSubmit(); }
  });
  $('#chat-stop').addEventListener('click', () => { if (controller) controller.abort(); });
  $('#chat-collection').addEventListener('change', (e) => {
    closeSource();
    app.select(e.target.value);
  });
  $('#chat-clear').addEventListener('click', () => {
    if (!app.state.current) return;
    sessionStorage.removeItem(historyKey(app.state.current));
    closeSource();
    renderLog();
    announce('Conversation cleared');
  });
}

/** Stop a running answer (sign out). */
export function stopChat() { if (controller) controller.abort(); }
