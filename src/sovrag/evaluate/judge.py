"""A judge LLM for the RAGAS-compatible metrics: ragas's prompts, with output constrained to JSON.

Each question to the judge carries ragas's instruction and one of its worked examples, and the reply is
constrained by a JSON schema (llama.cpp turns it into a grammar; OpenAI-compatible hosts get
`response_format: json_schema`), so a local model cannot answer with prose. The schema also fixes how
many verdicts come back (one per statement or per context). A reply that still does not parse, or a
judge that fails or times out, is retried `max_retries` times and then raised as a JudgeError, which the
evaluation records against that sample and metric; nothing becomes a silent NaN.

Two deliberate differences from ragas's call pattern (the verdicts and formulas are the same):
context precision asks for every retrieved context's verdict in one reply instead of one call per
context, and the prompts put the contexts first so that llama.cpp reuses their cached prefix across
the judge's questions about one sample. Both cut judge time on a CPU several-fold.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sovrag.errors import SovragError
from sovrag.generate import LLM, GenerationParams, Message

REASON = {"type": "string", "maxLength": 160}
VERDICT = {"type": "integer", "enum": [0, 1]}


class JudgeError(SovragError):
    """The judge gave no usable verdict (invalid JSON after retries, an LLM error, a timeout)."""


@dataclass
class JudgeStats:
    calls: int = 0
    retries: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _array(items: dict[str, Any], n: int | None = None, max_items: int = 40) -> dict[str, Any]:
    arr: dict[str, Any] = {"type": "array", "items": items}
    if n is not None:
        arr["minItems"] = arr["maxItems"] = n
    else:
        arr["minItems"], arr["maxItems"] = 1, max_items
    return arr


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


# ragas 0.4.3's instructions (metrics/_faithfulness.py, _answer_relevance.py, _context_precision.py,
# _context_recall.py), each with one of its examples.
STATEMENTS = (
    "Given a question and an answer, analyze the complexity of each sentence in the answer. Break down each "
    "sentence into one or more fully understandable statements. Ensure that no pronouns are used in any "
    "statement. Format the outputs in JSON.",
    {"question": "Who was Albert Einstein and what is he best known for?",
     "answer": "He was a German-born theoretical physicist, widely acknowledged to be one of the greatest and most "
               "influential physicists of all time. He was best known for developing the theory of relativity."},
    {"statements": ["Albert Einstein was a German-born theoretical physicist.",
                    "Albert Einstein is recognized as one of the greatest and most influential physicists of all "
                    "time.",
                    "Albert Einstein was best known for developing the theory of relativity."]},
)
NLI = (
    "Your task is to judge the faithfulness of a series of statements based on a given context. For each "
    "statement you must return verdict as 1 if the statement can be directly inferred based on the context or 0 "
    "if the statement can not be directly inferred based on the context.",
    {"context": "John is a student at XYZ University. He is pursuing a degree in Computer Science.",
     "statements": ["John is majoring in Biology.", "John is a student at XYZ University."]},
    {"statements": [{"reason": "John's major is Computer Science, not Biology.", "verdict": 0},
                    {"reason": "The context says John is a student at XYZ University.", "verdict": 1}]},
)
RELEVANCE = (
    "Generate a question for the given answer and Identify if answer is noncommittal. Give noncommittal as 1 if "
    "the answer is noncommittal and 0 if the answer is committal. A noncommittal answer is one that is evasive, "
    'vague, or ambiguous. For example, "I don\'t know" or "I\'m not sure" are noncommittal answers',
    {"response": "Albert Einstein was born in Germany."},
    {"question": "Where was Albert Einstein born?", "noncommittal": 0},
)
PRECISION = (
    "Given question, answer and context verify if the context was useful in arriving at the given answer. Give "
    'verdict as "1" if useful and "0" if not with json output. There are several contexts, numbered: give one '
    "verdict per context, in their order.",
    {"contexts": ["[1] The Andes is the longest continental mountain range in the world, located in South America.",
                  "[2] Mount Everest is Earth's highest mountain above sea level, in the Himalayas."],
     "question": "What is the tallest mountain in the world?", "answer": "Mount Everest."},
    {"verdicts": [{"reason": "The Andes are not the answer and do not lead to it.", "verdict": 0},
                  {"reason": "It names Mount Everest as the highest mountain.", "verdict": 1}]},
)
RECALL = (
    "Given a context, and an answer, analyze each sentence in the answer and classify if the sentence can be "
    "attributed to the given context or not. Use only 'Yes' (1) or 'No' (0) as a binary classification. Output "
    "json with reason.",
    {"context": "Albert Einstein (14 March 1879 - 18 April 1955) was a German-born theoretical physicist. He "
                "received the 1921 Nobel Prize in Physics.",
     "question": "What can you tell me about Albert Einstein?",
     "answer": "Albert Einstein, born on 14 March 1879, was a German-born theoretical physicist. He published 4 "
               "papers in 1905."},
    {"classifications": [
        {"statement": "Albert Einstein, born on 14 March 1879, was a German-born theoretical physicist.",
         "reason": "The date of birth and the profession are in the context.", "attributed": 1},
        {"statement": "He published 4 papers in 1905.", "reason": "The context does not mention papers.",
         "attributed": 0}]},
)


class Judge:
    def __init__(self, llm: LLM, max_retries: int = 1, max_tokens: int = 512) -> None:
        self.llm = llm
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.stats = JudgeStats()

    @property
    def name(self) -> str:
        return self.llm.name

    def _ask(self, name: str, prompt: tuple[str, dict[str, Any], dict[str, Any]], data: dict[str, Any],
             schema: dict[str, Any], temperature: float = 0.0, seed: int = 42) -> dict[str, Any]:
        instruction, example_in, example_out = prompt
        messages = [
            Message("system", f"{instruction}\nReply with JSON only."),
            Message("user", json.dumps(example_in, ensure_ascii=False)),
            Message("assistant", json.dumps(example_out, ensure_ascii=False)),
            Message("user", json.dumps(data, ensure_ascii=False)),
        ]
        problem = ""
        for attempt in range(self.max_retries + 1):
            params = GenerationParams(max_tokens=self.max_tokens * (attempt + 1), temperature=temperature,
                                      seed=seed + attempt, json_schema=schema)
            self.stats.retries += 1 if attempt else 0
            self.stats.calls += 1
            t0 = time.perf_counter()
            try:
                gen = self.llm.chat(messages, params)
            except SovragError as e:  # GenerationError: host down, timeout, refused request
                problem = f"the judge failed: {e}"
                continue
            finally:
                self.stats.seconds += time.perf_counter() - t0
            self.stats.prompt_tokens += gen.prompt_tokens
            self.stats.completion_tokens += gen.completion_tokens
            try:
                reply = json.loads(gen.text)
                _check(reply, schema)
            except (ValueError, TypeError) as e:
                cut = " (cut off at max_tokens)" if gen.finish_reason == "length" else ""
                problem = f"the judge's reply is not valid JSON for {name}{cut}: {e}; reply {gen.text[:120]!r}"
                continue
            return reply
        raise JudgeError(f"{name}: {problem} (after {self.max_retries + 1} attempts)")

    # ------------------------------------------------------------------ the questions ragas asks
    def statements(self, question: str, answer: str) -> list[str]:
        """The answer broken into standalone statements (faithfulness, step 1)."""
        schema = _obj({"statements": _array({"type": "string", "minLength": 1, "maxLength": 300}, max_items=12)})
        reply = self._ask("statements", STATEMENTS, {"question": question, "answer": answer}, schema)
        return [s.strip() for s in reply["statements"] if s.strip()]

    def nli(self, contexts: Sequence[str], statements: Sequence[str]) -> list[dict[str, Any]]:
        """One verdict (1 = inferable from the contexts) per statement (faithfulness, step 2)."""
        schema = _obj({"statements": _array(_obj({"reason": REASON, "verdict": VERDICT}), n=len(statements))})
        reply = self._ask("nli", NLI, {"context": "\n".join(contexts), "statements": list(statements)}, schema)
        return [{"statement": s, **v} for s, v in zip(statements, reply["statements"], strict=True)]

    def question_for(self, answer: str, seed: int) -> tuple[str, int]:
        """A question the answer would answer, and whether the answer is noncommittal (answer relevancy)."""
        schema = _obj({"question": {"type": "string", "minLength": 1, "maxLength": 300}, "noncommittal": VERDICT})
        reply = self._ask("question", RELEVANCE, {"response": answer}, schema, temperature=0.3 if seed else 0.0,
                          seed=seed)
        return str(reply["question"]).strip(), int(reply["noncommittal"])

    def context_useful(self, question: str, contexts: Sequence[str], reference: str) -> list[dict[str, Any]]:
        """One verdict per retrieved context: was it useful to arrive at the reference (context precision)."""
        schema = _obj({"verdicts": _array(_obj({"reason": REASON, "verdict": VERDICT}), n=len(contexts))})
        numbered = [f"[{i}] {c}" for i, c in enumerate(contexts, start=1)]
        reply = self._ask("context_precision", PRECISION,
                          {"contexts": numbered, "question": question, "answer": reference}, schema)
        return list(reply["verdicts"])

    def attribution(self, question: str, contexts: Sequence[str], reference: str) -> list[dict[str, Any]]:
        """The reference's sentences, each attributed (1) to the contexts or not (context recall)."""
        item = _obj({"statement": {"type": "string", "minLength": 1, "maxLength": 300}, "reason": REASON,
                     "attributed": VERDICT})
        schema = _obj({"classifications": _array(item, max_items=12)})
        reply = self._ask("context_recall", RECALL,
                          {"context": "\n".join(contexts), "question": question, "answer": reference}, schema)
        return list(reply["classifications"])


def _check(value: Any, schema: dict[str, Any]) -> None:
    """The subset of JSON Schema used above; a host that ignores response_format is caught here."""
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        for key in schema.get("required", []):
            if key not in value:
                raise ValueError(f"missing key {key!r}")
            _check(value[key], schema["properties"][key])
    elif kind == "array":
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        lo, hi = schema.get("minItems", 0), schema.get("maxItems", len(value))
        if not lo <= len(value) <= hi:
            raise ValueError(f"expected {lo}..{hi} items, got {len(value)}")
        for v in value:
            _check(v, schema["items"])
    elif kind == "string":
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool) or value not in schema.get("enum", [value]):
            raise ValueError(f"expected one of {schema.get('enum')}, got {value!r}")
