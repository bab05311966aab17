// A verified answer on screen: its sentences (inline markdown; one starting with a list marker is a list item) each
// with its citation buttons and unsupported ones marked, abstentions, contradictions, and the cited sources.

import { citedSources, openSource, sourceLabel } from './citations.js';
import { h } from './dom.js';
import { inlineNodes } from './markdown.js';

// "- ", "* ", "+ ", "• ", "1. ", "1) " (the server's sentence splitter starts a new sentence at each)
const LIST_ITEM = /^\s*(?:[-*+•]|(\d{1,3})[.)])\s+/;

function citeButton(source, evidence, support) {
  const label = `Source ${source.number}: ${sourceLabel(source)}`;
  return h('button', {
    type: 'button', class: 'cite', title: label, 'aria-label': label,
    onclick: (e) => openSource(source, evidence, { support, from: e.currentTarget }),
  }, `[${source.number}]`);
}

/** The answer as plain text with its sources listed, for the clipboard. */
export function answerCopyText(sov) {
  const lines = [sov.text];
  const sources = citedSources(sov);
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

function sentenceSpan(text, supported) {
  const span = h('span', { class: supported ? 'sentence' : 'sentence unsupported' }, inlineNodes(text));
  if (!supported) {
    span.title = 'Not supported by the sources';
    span.append(h('span', { class: 'visually-hidden' }, ' (not supported by the sources)'));
  }
  return span;
}

/**
 * The sentences as a paragraph and lists: a sentence starting with a list marker starts an item (of a numbered
 * list for "1."); the sentences after it stay in that item until the next marker.
 */
function answerText(sov, byNumber, cited) {
  const text = h('div', { class: 'answer-text' });
  let block = null;
  let list = null;
  for (const s of sov.sentences) {
    const m = LIST_ITEM.exec(s.text);
    if (m) {
      const ordered = m[1] !== undefined;
      if (!list || (list.tagName === 'OL') !== ordered) {
        list = h(ordered ? 'ol' : 'ul');
        text.append(list);
      }
      block = h('li', ordered ? { value: m[1] } : {});
      list.append(block);
    } else if (!block) {
      block = h('p');
      text.append(block);
    }
    block.append(sentenceSpan(m ? s.text.slice(m[0].length) : s.text, s.supported));
    for (const c of s.citations) {
      const src = byNumber.get(c.source);
      if (!src) continue;
      cited.add(c.source);
      block.append(' ', citeButton(src, [c.evidence], c.support));
    }
    block.append(' ');
  }
  return text;
}

export function renderAnswer(body, sov) {
  const byNumber = new Map(sov.sources.map((s) => [s.number, s]));
  body.replaceChildren();
  if (sov.abstained) {
    body.classList.add('abstained');
    const closest = new Set([...sov.text.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])));
    body.append(
      h('p', { class: 'badge badge-abstain' }, 'No answer in the documents'),
      h('p', {}, inlineNodes(sov.text.replace(/\s*Closest sources:.*$/s, ''))),
      sov.abstain_reason ? h('p', { class: 'hint' }, `Why: ${sov.abstain_reason}.`) : null,
    );
    const list = sourceList(sov, closest);
    if (list) body.append(h('p', { class: 'hint' }, 'Closest sources:'), list);
    return;
  }
  const cited = new Set();
  body.append(answerText(sov, byNumber, cited));
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
