// Feedback on an answer: thumbs up / down (POST /v1/feedback, then PATCH /v1/feedback/{id} for a change of mind)
// and an optional comment. The returned id and the rating are kept with the answer in the stored conversation, so
// a reload shows what was pressed. A failed request says so next to the buttons.

import { api } from './api.js';
import { citedSources } from './citations.js';
import { h } from './dom.js';

const COMMENT_MAX = 2000;
const ICON = document.createElement('template');
ICON.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M3 11h4v10H3z M7 11l4-8'
  + 'c1.5 0 2.5 1.2 2.2 2.7L12.6 9H19a2 2 0 0 1 2 2.3l-1.2 7.4A2.5 2.5 0 0 1 17.3 21H7"/></svg>';
let counter = 0;

const thumb = () => ICON.content.firstChild.cloneNode(true);

/** What the server stores with a rating: the question, the answer and the passages it cited. */
function payload(turn, ctx) {
  const sov = turn.sovrag;
  const sources = sov ? citedSources(sov).slice(0, 50).map((s) => ({
    number: s.number,
    source: String((s.chunk && s.chunk.source) || 'unknown file').slice(0, 1000),
    text: String((s.chunk && s.chunk.text) || s.text || '').slice(0, 20000),
  })) : [];
  const body = {
    collection: ctx.collection, question: ctx.question.slice(0, 20000),
    answer: String((sov && sov.text) || turn.content || '').slice(0, 50000), sources,
  };
  if (typeof turn.answerId === 'string' && turn.answerId && turn.answerId.length <= 100) body.answer_id = turn.answerId;
  return body;
}

/**
 * The feedback controls of a finished answer. `ctx`: {collection, question, save(feedback)}; `save` stores
 * {id, rating, comment} with the answer.
 */
export function feedbackBar(turn, ctx) {
  const id = `fb-${turn.uid || `n${++counter}`}`;
  let chosen = turn.feedback ? turn.feedback.rating : null;
  let sending = false;

  const up = h('button', { type: 'button', class: 'fb-button', 'aria-label': 'Good answer', title: 'Good answer' }, thumb());
  const down = h('button', { type: 'button', class: 'fb-button fb-down', 'aria-label': 'Bad answer', title: 'Bad answer' },
    thumb());
  const status = h('span', { class: 'fb-status', role: 'status', 'aria-live': 'polite' });
  const label = h('label', { for: `${id}-comment` });
  const area = h('textarea', { id: `${id}-comment`, rows: 2, maxlength: COMMENT_MAX, 'aria-describedby': `${id}-hint` });
  const hint = h('span', { id: `${id}-hint`, class: 'hint' }, `Optional, up to ${COMMENT_MAX} characters.`);
  const send = h('button', { type: 'submit', class: 'small' }, 'Send');
  const form = h('form', { class: 'fb-comment', hidden: true }, label, area, h('div', { class: 'fb-row' }, send, hint));

  const pressed = () => {
    up.setAttribute('aria-pressed', chosen === 'up' ? 'true' : 'false');
    down.setAttribute('aria-pressed', chosen === 'down' ? 'true' : 'false');
  };
  const say = (text, failed = false) => {
    status.textContent = text;
    status.classList.toggle('failed', failed);
  };
  const openComment = () => {
    label.textContent = chosen === 'down' ? 'What was wrong or missing? (optional)' : 'Anything to add? (optional)';
    area.value = (turn.feedback && turn.feedback.comment) || area.value;
    form.hidden = false;
    area.focus();
  };

  async function submit(patch) {
    const saved = turn.feedback || {};
    let res = null;
    if (saved.id) {
      try {
        res = await api(`/v1/feedback/${encodeURIComponent(saved.id)}`, { method: 'PATCH', json: patch });
      } catch (e) {
        if (e.status !== 404) throw e; // deleted on the server meanwhile: rate anew
      }
    }
    if (!res) {
      res = await api('/v1/feedback', {
        method: 'POST',
        json: { ...payload(turn, ctx), rating: patch.rating || saved.rating, comment: patch.comment ?? saved.comment ?? '' },
      });
    }
    turn.feedback = { id: res.id, rating: res.rating, comment: res.comment || '' };
    ctx.save(turn.feedback);
  }

  async function rate(rating) {
    if (sending) return;
    if (turn.feedback && turn.feedback.rating === rating) { // pressed already: add or change the comment
      if (form.hidden) openComment(); else form.hidden = true;
      return;
    }
    const before = chosen;
    chosen = rating;
    pressed();
    sending = true;
    say('Sending…');
    try {
      await submit({ rating });
      say(rating === 'up' ? 'Thanks for the feedback.' : 'Thanks. A comment helps to fix it.');
      if (rating === 'down') openComment(); else form.hidden = true;
    } catch (e) {
      chosen = before;
      pressed();
      say(`Could not send the feedback: ${e.message}`, true);
    } finally {
      sending = false;
    }
  }

  up.addEventListener('click', () => rate('up'));
  down.addEventListener('click', () => rate('down'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (sending || !chosen) return;
    sending = true;
    send.disabled = true;
    say('Sending…');
    try {
      await submit({ rating: chosen, comment: area.value.slice(0, COMMENT_MAX) });
      form.hidden = true;
      (chosen === 'up' ? up : down).focus(); // not lost with the hidden form
      say('Thanks, your comment was sent.');
    } catch (err) {
      say(`Could not send the comment: ${err.message}`, true);
    } finally {
      sending = false;
      send.disabled = false;
    }
  });

  pressed();
  return h('div', { class: 'feedback' },
    h('div', { class: 'fb-row', role: 'group', 'aria-label': 'Rate this answer' }, up, down, status), form);
}
