// Markdown in answers, safely. markdown-it (vendor/markdown-it.min.js, a classic script that index.html loads before
// the modules: window.markdownit) with raw HTML off (written as text), its own link validation (no javascript:,
// vbscript:, file: or data: links) and no images; links open in a new tab with no opener and no referrer. What it
// makes is parsed in an inert <template> and checked against an allowlist of elements and attributes before it
// reaches the page, so even a bug there could not add a script, an event handler or an image.

const md = typeof window.markdownit === 'function'
  ? window.markdownit({ html: false, linkify: true, typographer: false, breaks: true })
  : null;

if (md) {
  md.linkify.set({ fuzzyLink: false, fuzzyEmail: false }); // "handbook.md" is a file name, not a web site
  md.disable(['image']);
  const linkOpen = md.renderer.rules.link_open || ((tokens, i, options, env, self) => self.renderToken(tokens, i, options));
  md.renderer.rules.link_open = (tokens, i, options, env, self) => {
    tokens[i].attrSet('target', '_blank');
    tokens[i].attrSet('rel', 'noopener noreferrer');
    return linkOpen(tokens, i, options, env, self);
  };
}

const ELEMENTS = new Set(['P', 'BR', 'STRONG', 'EM', 'S', 'CODE', 'PRE', 'A', 'UL', 'OL', 'LI', 'BLOCKQUOTE',
  'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'HR', 'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD']);
const ATTRIBUTES = { A: ['href', 'title', 'target', 'rel'], OL: ['start'], CODE: ['class'] };
const PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);

function safeHref(href) {
  try { return PROTOCOLS.has(new URL(href, document.baseURI).protocol); } catch { return false; }
}

/** The nodes of `html` (markdown-it's output) with anything not on the allowlist made plain text. */
function toNodes(html) {
  const template = document.createElement('template');
  template.innerHTML = html; // inert: nothing in a template runs or loads
  for (const el of [...template.content.querySelectorAll('*')]) {
    if (!template.content.contains(el)) continue; // inside an element already made text
    if (!ELEMENTS.has(el.tagName) || (el.tagName === 'A' && !safeHref(el.getAttribute('href') || ''))) {
      el.replaceWith(document.createTextNode(el.textContent));
      continue;
    }
    const allowed = ATTRIBUTES[el.tagName] || [];
    for (const { name } of [...el.attributes]) if (!allowed.includes(name)) el.removeAttribute(name);
    if (el.tagName === 'CODE' && !/^language-[\w-]+$/.test(el.className)) el.removeAttribute('class');
    if (el.tagName === 'A') {
      el.setAttribute('target', '_blank');
      el.setAttribute('rel', 'noopener noreferrer');
    }
  }
  return template.content;
}

/** A sentence (or any one line) as inline markdown: emphasis, code, links. */
export function inlineNodes(text) {
  return md ? toNodes(md.renderInline(text || '')) : document.createTextNode(text || '');
}

/** A whole text as markdown: paragraphs, lists, code blocks, tables. */
export function blockNodes(text) {
  if (!md) {
    const p = document.createElement('p');
    p.textContent = text || '';
    return p;
  }
  return toNodes(md.render(text || ''));
}
