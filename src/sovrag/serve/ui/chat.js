// Chat over one collection: streamed answers through /v1/chat/completions (model "rag:<collection>"),
// verified sentences with clickable citations, abstentions and contradictions (answer.js), feedback (feedback.js),
// retrieval settings (settings.js), the LLM picked when the server offers several (models.js), history per tenant
// and collection (history.js).

import { answerCopyText, renderAnswer } from './answer.js';
import { ApiError, request } from './api.js';
import { closeSource } from './citations.js';
import { $, announce, h } from './dom.js';
import { feedbackBar } from './feedback.js';
import { forgetHistory, loadHistory as loadTurns, saveHistory, turnId, updateTurn } from './history.js';
import { blockNodes } from './markdown.js';
import { initModels, llmOption, loadModels, modelName } from './models.js';
import { initSettings, retrievalOptions } from './settings.js';
import { sseData } from './sse.js';

const PRIOR_MESSAGES = 6; // earlier messages sent along with a question
const HEADERS_TIMEOUT_MS = 180000; // loading the model and waiting in the LLM queue happen before the first byte
const IDLE_TIMEOUT_MS = 120000; // no event for this long while streaming: give up

let app;
let busy = false;
let asking = null; // the collection whose answer is streaming
let controller = null;

// ------------------------------------------------------------------ history (localStorage, per tenant)
const tenant = () => app.state.tenantId;
const loadHistory = (col) => loadTurns(tenant(), col);

// ------------------------------------------------------------------ rendering
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

/**
 * An assistant message; `update(turn)` re-renders it as the stream goes on. `ctx`: {collection, question}, for the
 * feedback buttons under a finished answer.
 */
function assistantNode(turn, ctx) {
  const body = h('div', { class: 'answer-body' });
  const error = h('p', { class: 'msg-error', hidden: true });
  const actions = h('div', { class: 'msg-actions' });
  const footer = h('p', { class: 'msg-model' });
  const el = h('article', { class: 'msg assistant', 'aria-label': 'Answer' }, body, error, actions, footer);
  const tenantId = tenant();
  const save = (feedback) => {
    if (tenant() === tenantId) updateTurn(tenantId, ctx.collection, turn.uid, { feedback });
  };
  const update = (t, { streaming = false } = {}) => {
    el.classList.toggle('streaming', streaming);
    if (t.sovrag) renderAnswer(body, t.sovrag);
    else if (t.content) body.replaceChildren(h('div', { class: 'answer-text' }, blockNodes(t.content)));
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
      if (!t.error && ctx.question) actions.append(feedbackBar(t, { ...ctx, save }));
    }
    footer.replaceChildren();
    if (!streaming && t.sovrag && typeof t.sovrag.model === 'string' && t.sovrag.model) {
      const name = modelName(t.sovrag.model);
      footer.append('Written by ', h('span', { class: 'model-name', title: t.sovrag.model }, name));
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
  let question = '';
  for (const turn of loadHistory(col)) {
    if (turn.role === 'user') {
      question = turn.content;
      log.append(userNode(turn));
    } else {
      log.append(assistantNode(turn, { collection: col, question }).el);
    }
  }
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

function explain(e, col, options) {
  if (e.code === 'aborted') return 'Stopped. What had arrived is kept above.';
  if (e.status === 404 && e.code === 'model_not_found' && e.param === 'sovrag.llm') {
    loadModels(tenant()); // the list has changed: offer what is there now (the default when the pick is gone)
    const name = options && options.llm ? `"${options.llm}" ` : '';
    return `The model ${name}is not offered by the server any more. Pick a model and ask again.`;
  }
  if (e.status === 404 && e.code === 'model_not_found') return `The collection "${col}" no longer exists.`;
  return e.message || String(e);
}

async function ask(question, options) {
  const col = app.state.current;
  if (busy || !col || !question.trim()) return;
  $('#chat-error').textContent = '';
  const prior = loadHistory(col).filter((t) => t.content && !t.error).slice(-PRIOR_MESSAGES)
    .map((t) => ({ role: t.role, content: t.content }));
  const userTurn = { role: 'user', content: question.trim() };
  const turn = { role: 'assistant', content: '', uid: turnId() };
  const log = $('#chat-log');
  const node = assistantNode(turn, { collection: col, question: userTurn.content });
  log.append(userNode(userTurn), node.el);
  node.update(turn, { streaming: true });
  log.scrollTop = log.scrollHeight;
  setBusy(true);
  asking = col;
  const tenantId = tenant();
  controller = new AbortController();
  let final = null;
  try {
    const res = await request('/v1/chat/completions', {
      method: 'POST', timeout: HEADERS_TIMEOUT_MS, signal: controller.signal, accept: 'text/event-stream',
      json: { model: `rag:${col}`, stream: true, messages: [...prior, userTurn], sovrag: { raw: true, ...options } },
    });
    let finished = false;
    let streamError = null;
    for await (const data of sseData(res, { idleMs: IDLE_TIMEOUT_MS, signal: controller.signal })) {
      if (data === '[DONE]') { finished = true; break; }
      let event;
      try { event = JSON.parse(data); } catch { continue; }
      if (typeof event.id === 'string' && !turn.answerId) turn.answerId = event.id;
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
    turn.error = explain(e, col, options);
    if (!(e instanceof ApiError)) console.error(e);
  } finally {
    controller = null;
    asking = null;
    // as stored now, not as at the start: feedback given meanwhile on an earlier answer is kept
    if (tenant() === tenantId) saveHistory(tenantId, col, [...loadHistory(col), userTurn, turn]); // not after a sign-out
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
  initSettings();
  initModels();
  $('#chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('#chat-input');
    const q = input.value;
    if (!q.trim()) { $('#chat-error').textContent = 'Type a question first.'; input.focus(); return; }
    let options;
    try {
      options = { ...retrievalOptions(), ...llmOption() };
    } catch (err) {
      $('#chat-error').textContent = err.message;
      $('#setting-top-k').focus();
      return;
    }
    input.value = '';
    ask(q, options);
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
    forgetHistory(tenant(), app.state.current);
    closeSource();
    renderLog();
    announce('Conversation cleared');
  });
}

/** Stop a running answer (sign out). */
export function stopChat() { if (controller) controller.abort(); }
