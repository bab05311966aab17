"""What a front end may choose about answering one question (retrieval, prompt, checks, abstention)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sovrag.config import Settings
from sovrag.generate import GenerationParams
from sovrag.store import Filters, SearchMode


@dataclass
class AnswerOptions:
    top_k: int = 6
    mode: SearchMode = "hybrid"
    filters: Filters | None = None
    compress: bool = True
    #: Prompt tokens for sources; 0 = sized to the model's context.
    budget_tokens: int = 0
    #: Compression never keeps a sentence scoring below this share of the best sentence's score.
    compress_floor: float = 0.5
    #: The best-ranked chunks kept whole by compression (they most often hold the answer and its context).
    #: Defaults (budget 250 tokens, keep 1 whole, floor 0.5) were chosen on a dev sample of HaluEval-QA
    #: (seed 99) and then measured on the benchmark sample (seed 13): docs/benchmarks.md.
    compress_keep_whole: int = 1
    max_tokens: int = 256
    #: Retrieval's second stage: "model" (the shipped reranker), "off", or a trained reranker's folder.
    rerank: str = "model"
    #: Abstain without generating when the reranker's P(the best candidate answers) is below this (None: the
    #: threshold in the reranker's manifest, chosen on dev questions with their passage present vs removed)...
    min_answerable: float | None = None
    #: ...or when the best question-sentence similarity is below this...
    min_relevance: float = 0.3
    #: ...or when no source holds at least this share of the question's content terms (0 = off: the gate did
    #: not survive paraphrased questions; the verifier decides after generating instead, docs/benchmarks.md).
    min_coverage: float = 0.0
    #: How answer sentences are checked: "model" (the shipped groundedness verifier), "lexical" (no model), or
    #: the folder of a verifier trained by `python -m sovrag.train verifier`.
    verify: str = "model"
    #: An unsupported sentence is "mark"ed [unsupported] or "withhold"n from the answer text.
    unsupported: str = "mark"
    #: A sentence the verifier does not support but finds no source contradicting may still be supported by
    #: the lexical rule (term coverage + similarity, numbers must match): generated answers restate the
    #: question's multi-hop premises in words the verifier was not trained to accept (docs/benchmarks.md).
    lexical_fallback: bool = True
    max_chunks_per_doc: int = 3
    #: When retrieval found a passage that answers (the reranker says so) but no sentence of the model's answer
    #: is supported, answer with the passage's own sentence that best matches the question, quoted and cited,
    #: instead of abstaining: the sources' words, never the model's unsupported ones.
    quote_fallback: bool = True
    #: Answer a yes/no question "Yes." or "No." first, decided before generating from the LLM's first-word
    #: log-odds and the verifier's reading of the sources (answer/yesno.py). Off by default: on 300 BoolQ
    #: dev-split questions neither signal beat always answering "yes" with the default 0.5B model (first-word
    #: odds correlate 0.02 with the label, the verifier's margin 0.11; docs/benchmarks.md), so a forced lead
    #: would be a confident guess. Without it the model's own answer is verified sentence by sentence.
    yes_no_lead: bool = False
    #: "simple" or "cited" (see answer/prompt.py); "auto": simple for local llama.cpp models, else cited.
    prompt_style: str = "auto"
    #: Where the best source sits in the prompt: "best-first" (rank order, right after the opening question) or
    #: "best-last" (next to the closing question). Best-first measured better with the 0.5B model on dev questions
    #: (contains-answer 0.55 vs 0.40, docs/benchmarks.md); answer/prompt.py.
    source_order: str = "best-first"
    params: GenerationParams = field(default_factory=GenerationParams)

    @classmethod
    def of(cls, settings: Settings, **options: Any) -> AnswerOptions:
        """Options with the settings' choices of verification, unsupported sentences and reranking (the one place
        every front end takes them from), and `options` on top."""
        return cls(verify=settings.verify, unsupported=settings.unsupported, rerank=settings.rerank, **options)
