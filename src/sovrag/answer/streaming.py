"""Complete sentences out of a stream of text deltas, for verifying an answer sentence by sentence.

A sentence is complete once the text after it has begun another one (or the stream ended): the splitter is
the same `sovrag.text.split_sentences` that verification uses, so what is streamed and what is verified are
cut at the same places.
"""

from __future__ import annotations

from collections.abc import Iterator

from sovrag.text import split_sentences


class SentenceBuffer:
    def __init__(self) -> None:
        self.buf = ""

    def feed(self, delta: str) -> Iterator[str]:
        """The sentences `delta` completed."""
        self.buf += delta
        while True:
            sents = split_sentences(self.buf)
            if len(sents) < 2:
                return
            first = sents[0]
            at = self.buf.find(first)
            nxt = self.buf.find(sents[1][:20], at + len(first)) if at >= 0 else -1
            if at < 0 or nxt < 0:  # the splitter rewrote the text (a merged abbreviation): wait for the end
                return
            self.buf = self.buf[nxt:]
            yield first

    def close(self) -> list[str]:
        """The sentences left when the stream ended."""
        rest, self.buf = split_sentences(self.buf), ""
        return rest
