"""`sovrag tune`'s training set, built from the collection itself (no torch here).

For each sampled chunk the generator LLM (the configured one, or a larger OpenAI-compatible model) writes one
question the chunk answers and the answer's words copied from it. An item is kept only if the answer is really in
the chunk, the groundedness verifier supports "question -> answer" from the chunk, the question does not give its
answer away, and sovrag's own retrieval finds the chunk for the question. Each kept item becomes:

- an answerable example: the prompt sovrag's answer pipeline builds for the question from what retrieval
  returned, and the answer in sovrag's format (the direct answer first, then the source's own sentence quoted);
- for every other item (seeded), an unanswerable example: the same prompt with the chunk withheld -> the
  abstention text (only when no other retrieved source contains the answer).

Items are split chunk-disjoint into train and held-out (the held-out questions' chunks never appear in training).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

from sovrag.answer.pipeline import AnswerPipeline
from sovrag.answer.prompt import ABSTAIN_TEXT, build_messages
from sovrag.errors import SovragError
from sovrag.evaluate.answers import normalize_answer
from sovrag.generate import LLM, GenerationParams, Message
from sovrag.text import split_sentences
from sovrag.train.lora import Example
from sovrag.types import Chunk, Context
from sovrag.verifier import Verifier, qa_claim

log = logging.getLogger(__name__)

#: Fewer chunks than this cannot give a training split and a held-out split worth measuring.
MIN_CHUNKS = 12
#: Chunks with fewer words rarely hold a fact worth a question (titles, link lists).
MIN_WORDS = 25
MAX_ANSWER_WORDS = 24
#: An answer not copied verbatim must have this share of its words in one sentence of the chunk.
EVIDENCE_SHARE = 0.8

GENERATOR_SYSTEM = "You write exam questions about a passage. Follow the format exactly."
GENERATOR_PROMPT = (
    "Passage:\n{text}\n\n"
    "Write one specific question that this passage answers, and its answer: a short phrase copied word for "
    "word from the passage. Do not put the answer in the question.\n"
    'Reply with JSON: {{"question": "...", "answer": "..."}}'
)
QA_SCHEMA = {"type": "object", "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
             "required": ["question", "answer"]}
_QA = re.compile(r"question\s*:\s*(?P<q>.+?)\s*\n+\s*answer\s*:\s*(?P<a>.+)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Item:
    chunk_id: str
    source: str
    question: str
    answer: str  # the short answer, words of the chunk
    evidence: str  # the chunk's sentence that holds the answer
    split: str = "train"  # or "heldout"

    def target(self) -> str:
        """The answer in sovrag's format: the direct answer, then the source's sentence quoted."""
        short = self.answer.strip().rstrip(".")
        short = short[:1].upper() + short[1:]
        if len(normalize_answer(short).split()) >= 0.7 * len(normalize_answer(self.evidence).split()):
            return self.evidence
        return f'{short}. The documents say: "{self.evidence}"'


@dataclass
class TuneData:
    items: list[Item]
    train: list[Example]
    #: Held-out evaluation cases: (item, context with its chunk, context with it withheld or None).
    heldout: list[tuple[Item, Context, Context | None]] = field(repr=False, default_factory=list)
    rejected: Counter = field(default_factory=Counter)
    chunks: int = 0

    def summary(self) -> dict:
        kinds = Counter(e.kind for e in self.train)
        return {"chunks_in_collection": self.chunks, "questions_kept": len(self.items),
                "train_examples": len(self.train), "train_answerable": kinds["answerable"],
                "train_unanswerable": kinds["unanswerable"], "heldout_questions": len(self.heldout),
                "rejected": dict(self.rejected)}


def parse_generated(text: str) -> tuple[str, str] | None:
    """(question, answer) from the generator's JSON reply (or "Question: ... Answer: ..." from a host that
    ignored the schema)."""
    try:
        d = json.loads(text)
        q, a = str(d["question"]).strip(), str(d["answer"]).strip()
    except (ValueError, KeyError, TypeError):
        m = _QA.search(text or "")
        if not m:
            return None
        q = m["q"].strip().splitlines()[0].strip()
        a = m["a"].strip().splitlines()[0].strip().strip('"').strip()
    return (q, a) if q and a else None


def _evidence(chunk_text: str, answer: str) -> str:
    """The chunk's sentence holding the answer: verbatim, or at least EVIDENCE_SHARE of its words."""
    target = normalize_answer(answer)
    words = set(target.split())
    best, share = "", 0.0
    for sentence in split_sentences(chunk_text):
        norm = normalize_answer(sentence)
        if target and target in norm:
            return sentence.strip()
        s = len(words & set(norm.split())) / max(1, len(words))
        if s > share:
            best, share = sentence.strip(), s
    return best if share >= EVIDENCE_SHARE else ""


def make_item(chunk: Chunk, generated: str, verifier: Verifier | None) -> tuple[Item | None, str]:
    """An item from the generator's reply, or None and why it was rejected."""
    parsed = parse_generated(generated)
    if parsed is None:
        return None, "unparsable"
    q, a = parsed
    if not q.endswith("?"):
        return None, "not a question"
    if len(a.split()) > MAX_ANSWER_WORDS:
        return None, "answer too long"
    na = normalize_answer(a)
    if not na:
        return None, "empty answer"
    if na in normalize_answer(q):
        return None, "question gives answer away"
    evidence = _evidence(chunk.text, a)
    if not evidence:
        return None, "answer not in chunk"
    if verifier is not None:
        v = verifier.score(chunk.text, [qa_claim(q, a)], question=q)[0]
        if not verifier.supports(v):
            return None, "not grounded (verifier)"
    return Item(chunk.id, chunk.source, q, a, evidence), ""


def heldout_of(chunk_id: str, seed: int, share: float) -> bool:
    """Chunk-disjoint split: a chunk's items are all held out or all trained on, decided by its id and the seed."""
    h = int(hashlib.sha256(f"{seed}:{chunk_id}".encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < share


def withhold(ctx: Context, chunk_id: str) -> Context:
    """The Context without one chunk (sources renumbered), as if retrieval had never found it. The reranker's
    answerability referred to the chunk's presence, so it is dropped."""
    keep = [(s, e) for s, e in zip(ctx.sources, ctx.evidence, strict=True) if s.chunk.id != chunk_id]
    sources = [replace(s, number=i + 1) for i, (s, _) in enumerate(keep)]
    evidence = [replace(e, number=i + 1) for i, (_, e) in enumerate(keep)]
    return replace(ctx, hits=[h for h in ctx.hits if h.chunk.id != chunk_id], sources=sources, evidence=evidence,
                   relevance=max((s.relevance for s in sources), default=0.0), answerable=None)


def check_size(collection: str, chunks: int) -> None:
    if chunks < MIN_CHUNKS:
        raise SovragError(f"collection {collection!r}: {chunks} chunks; tuning needs at least {MIN_CHUNKS} (a few "
                          "documents' worth) to have questions to train on and others to measure on, and a hundred "
                          "or more to teach the model much")


def unanswerable(ctx: Context, item: Item) -> Context | None:
    """The item's question with its chunk withheld, or None when what is left still holds the answer (or is
    empty): then it is not an unanswerable case."""
    w = withhold(ctx, item.chunk_id)
    answer = normalize_answer(item.answer)
    if not w.sources or any(answer in normalize_answer(s.text) for s in w.sources):
        return None
    return w


def sample_chunks(chunks: Sequence[Chunk], max_chunks: int, seed: int) -> list[Chunk]:
    usable = [c for c in chunks if len(c.text.split()) >= MIN_WORDS]
    rng = random.Random(seed)
    rng.shuffle(usable)
    return usable[:max_chunks] if max_chunks else usable


def build(pipeline: AnswerPipeline, generator: LLM, verifier: Verifier | None, *, max_chunks: int = 200,
          heldout_share: float = 0.2, seed: int = 13,
          progress: Callable[[int, int], None] | None = None) -> TuneData:
    """Generate, filter and split the items, and turn them into training examples and held-out cases."""
    store = pipeline.col.store
    total = store.count()
    check_size(pipeline.col.name, total)
    chunks = sample_chunks(store.chunks(limit=max(total, 1)), max_chunks, seed)
    if len(chunks) < MIN_CHUNKS:
        raise SovragError(f"collection {pipeline.col.name!r}: only {len(chunks)} chunks have {MIN_WORDS}+ words; "
                          f"tuning needs at least {MIN_CHUNKS}")
    data = TuneData([], [], chunks=total)
    seen: set[str] = set()
    params = GenerationParams(max_tokens=150, temperature=0.0, json_schema=QA_SCHEMA)
    rng = random.Random(seed)
    style = pipeline.style()
    for k, chunk in enumerate(chunks):
        if progress:
            progress(k, len(chunks))
        reply = generator.chat([Message("system", GENERATOR_SYSTEM),
                                Message("user", GENERATOR_PROMPT.format(text=chunk.text.strip()))], params).text
        item, why = make_item(chunk, reply, verifier)
        if item is None:
            data.rejected[why] += 1
            continue
        key = normalize_answer(item.question)
        if key in seen:
            data.rejected["duplicate question"] += 1
            continue
        ctx = pipeline.retrieve(item.question)
        gold = next((s for s in ctx.sources if s.chunk.id == chunk.id), None)
        if gold is None:
            data.rejected["retrieval misses its chunk"] += 1
            continue
        if normalize_answer(item.evidence) not in normalize_answer(gold.text):
            data.rejected["evidence compressed away"] += 1
            continue
        seen.add(key)
        withheld = unanswerable(ctx, item)
        if heldout_of(chunk.id, seed, heldout_share):
            item = replace(item, split="heldout")
            data.heldout.append((item, ctx, withheld))
        else:
            data.train.append(Example(tuple(build_messages(item.question, ctx.sources, style)), item.target()))
            if withheld is not None and rng.random() < 0.5:
                data.train.append(Example(tuple(build_messages(item.question, withheld.sources, style)),
                                          ABSTAIN_TEXT, "unanswerable"))
        data.items.append(item)
    if progress:
        progress(len(chunks), len(chunks))
    if not data.train or not data.heldout:
        raise SovragError(f"collection {pipeline.col.name!r}: of {len(chunks)} chunks, {len(data.items)} gave usable "
                          f"questions ({len(data.train)} training examples, {len(data.heldout)} held out; rejected: "
                          f"{dict(data.rejected)}); use more chunks (--max-chunks) or a stronger generator "
                          "(--generator)")
    return data


def items_dict(items: Sequence[Item]) -> list[dict]:
    return [asdict(i) for i in items]
