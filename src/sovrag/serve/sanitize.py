"""Active markup from documents never reaches an API client in a form it would execute.

Documents are untrusted: a page may carry `<img src=x onerror=...>`, `<script>` or a
`[click](javascript:...)` link, and the LLM may copy it into an answer. sovrag's own web UI renders text
nodes only, but OpenAI-compatible clients (chat front-ends, notebooks) render Markdown and often raw HTML.
So answer text, sentences, source titles and passages sent over the API are neutralised:
- `<` that could open a tag, comment or processing instruction becomes `&lt;` (a Markdown renderer shows it
  as the literal character, a plain-text client shows the entity);
- link destinations with an active scheme (`javascript:`, `vbscript:`, `data:`, `file:`) become inert
  fragments (`#blocked-javascript:...`), inline and reference-style alike.
Ordinary text (`a < b`, `x<5`, brackets, links to https) is left exactly as it was. A client that renders
text safely itself asks for the raw text with `"sovrag": {"raw": true}` (the web UI does).
"""

from __future__ import annotations

import re
from typing import Any

_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
_SCHEMES = r"(?:javascript|vbscript|data|file)"
_INLINE_LINK = re.compile(rf"(\]\(\s*<?\s*)({_SCHEMES})(\s*:)", re.IGNORECASE)
_REF_LINK = re.compile(rf"(^[ \t]*\[[^\]\n]+\]:[ \t]*<?[ \t]*)({_SCHEMES})([ \t]*:)", re.IGNORECASE | re.MULTILINE)
#: A streamed delta may end inside a pattern: hold back a tail that starts at one of these characters.
_HOLD = re.compile(r"[<\]][^<\]]{0,40}$")


def neutralize(text: str) -> str:
    """`text` with tag openers escaped and active link schemes made inert."""
    if not text:
        return text
    text = _TAG_OPEN.sub("&lt;", text)
    text = _INLINE_LINK.sub(lambda m: f"{m[1]}#blocked-{m[2].lower()}{m[3]}", text)
    return _REF_LINK.sub(lambda m: f"{m[1]}#blocked-{m[2].lower()}{m[3]}", text)


class StreamNeutralizer:
    """Neutralises text that arrives in pieces: a pattern split across two deltas is still caught."""

    def __init__(self, raw: bool = False) -> None:
        self.raw = raw
        self._held = ""

    def feed(self, delta: str) -> str:
        if self.raw:
            return delta
        text = self._held + delta
        m = _HOLD.search(text)
        cut = m.start() if m else len(text)
        self._held = text[cut:]
        return neutralize(text[:cut])

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held if self.raw else neutralize(held)


def neutralize_answer(d: dict[str, Any]) -> dict[str, Any]:
    """An `Answer.to_dict()` (as the API sends it) with every text a client may render neutralised."""
    for key in ("text", "abstain_reason", "draft"):
        if isinstance(d.get(key), str):
            d[key] = neutralize(d[key])
    for s in d.get("sentences", []):
        if isinstance(s.get("text"), str):
            s["text"] = neutralize(s["text"])
        for c in s.get("citations", []):
            if isinstance(c.get("evidence"), str):
                c["evidence"] = neutralize(c["evidence"])
    for src in d.get("sources", []):
        for holder in (src, src.get("chunk", {})):
            for key in ("text", "title"):
                if isinstance(holder.get(key), str):
                    holder[key] = neutralize(holder[key])
    for c in d.get("contradictions", []) or []:
        for key in ("claim_a", "claim_b"):
            if isinstance(c.get(key), str):
                c[key] = neutralize(c[key])
        for key in ("values_a", "values_b"):
            c[key] = [neutralize(v) for v in c.get(key, [])]
    return d
