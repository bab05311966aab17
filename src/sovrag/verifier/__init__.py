"""The groundedness verifier: does a passage support a claim, contradict it, or not say?

A cross-encoder (MiniLM-L6 fine-tuned by `sovrag.train verifier`, exported to int8 ONNX, run on onnxruntime:
no torch at run time) reads ``[CLS] premise [SEP] claim [SEP]`` and gives three probabilities: supported,
contradicted, not enough information. A passage longer than the model's window is cut into windows of whole
sentences (the sentences that share most with the claim, then consecutive runs); the verdict is the one of the
window that supports the claim best (max over windows). Text the model was not trained on (not English) is
reported as such, never scored as if it were.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from sovrag.errors import ModelError, SovragError
from sovrag.models.registry import sha256
from sovrag.text import STOPWORDS, content_terms, numbers, split_sentences, words

LABELS = ("supported", "contradicted", "not enough information")
SUPPORTED, CONTRADICTED, NEI = 0, 1, 2
MAX_WINDOWS = 12
HERE = Path(__file__).resolve().parent
#: The shipped model (trained by `python -m sovrag.train verifier`; recipe and metrics in its manifest).
WEIGHTS = HERE / "weights"


@dataclass(frozen=True)
class Verdict:
    supported: float
    contradicted: float
    nei: float
    #: The premise window that decided (the passage itself when it fits the model's window).
    window: str = ""
    #: Why no score was given ("" when scored): e.g. the text is outside what the model was trained on.
    outside: str = ""

    @property
    def label(self) -> str:
        if self.outside:
            return "not checked"
        probs = (self.supported, self.contradicted, self.nei)
        return LABELS[int(np.argmax(probs))]

    def to_dict(self) -> dict:
        return {"label": self.label, "supported": round(self.supported, 4), "contradicted": round(self.contradicted, 4),
                "not_enough_information": round(self.nei, 4), "window": self.window, "outside": self.outside}


#: Function words of other languages written in the Latin script (Spanish, French, German, Italian, Portuguese,
#: Dutch): text with more of them than English ones is not English, whatever its technical terms.
_FOREIGN = frozenset("""de la el los las del que y en por para con una un es se su al lo como pero sus le les des
    et est du une pour dans qui sur pas au ce avec sont der die das und ist nicht mit den von zu im dem ein eine auf
    sich auch des il che di e per non della sono nel gli da um os uma com para nao het een van niet op voor zijn
    ook dat er maar wordt""".split()) - STOPWORDS
_LATIN = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ]")
_LETTER = re.compile(r"[^\W\d_]")


def outside_training(text: str) -> str:
    """Why the verifier cannot judge `text` (it was trained on English), or "" when it can."""
    letters = _LETTER.findall(text)
    if len(letters) >= 12 and len(_LATIN.findall(text)) / len(letters) < 0.8:
        return "the text is not in the Latin script; the verifier was trained on English only"
    ws = words(text)
    foreign = sum(w in _FOREIGN for w in ws)
    if len(ws) >= 6 and foreign >= 2 and foreign > sum(w in STOPWORDS for w in ws):
        return "the text does not read as English; the verifier was trained on English only"
    return ""


def overlap(sentence: str, claim_terms: set[str], claim_numbers: set[str]) -> float:
    terms = set(content_terms(sentence))
    score = len(terms & claim_terms) / (len(claim_terms) or 1)
    if claim_numbers and claim_numbers & numbers(sentence):
        score += 0.5
    return score


def quote(window: str, claim: str) -> str:
    """The sentence of a premise window that shares most with the claim: the evidence shown to users."""
    sents = split_sentences(window)
    if not sents:
        return ""
    terms, nums = set(content_terms(claim)), numbers(claim)
    return max(sents, key=lambda s: overlap(s, terms, nums))


def windows(sentences: Sequence[str], claim: str, room: int, count: Callable[[str], int]) -> list[str]:
    """Premise windows of whole sentences, each within `room` tokens: the sentences most related to the claim
    (in document order), then consecutive runs with half overlap. One window when everything fits."""
    sents = [s for s in sentences if s.strip()]
    if not sents:
        return []
    sizes = [max(1, count(s)) for s in sents]
    if sum(sizes) <= room:
        return [" ".join(sents)]
    terms, nums = set(content_terms(claim)), numbers(claim)
    ranked = sorted(range(len(sents)), key=lambda i: -overlap(sents[i], terms, nums))
    chosen, used = [], 0
    for i in ranked:
        if used + sizes[i] <= room:
            chosen.append(i)
            used += sizes[i]
    out = [" ".join(sents[i] for i in sorted(chosen))] if chosen else []
    start = 0
    while start < len(sents) and len(out) < MAX_WINDOWS:
        end, used = start, 0
        while end < len(sents) and used + sizes[end] <= room:
            used += sizes[end]
            end += 1
        if end == start:  # one sentence longer than the window: the tokenizer truncates it
            end = start + 1
        w = " ".join(sents[start:end])
        if w not in out:
            out.append(w)
        if end >= len(sents):
            break
        start = max(start + 1, (start + end) // 2)
    return out


@lru_cache(maxsize=4096)
def stated_numbers(text: str) -> frozenset[str]:
    """The numbers a text states, in digits or in words ("three years", "the second", "7,000")."""
    from text_to_num import alpha2digit

    try:
        spelled = alpha2digit(text, "en", 0)
    except Exception:  # noqa: BLE001 - a parser failure on odd text only loses the spelled-out numbers
        spelled = ""
    return frozenset(numbers(text) | numbers(spelled))


def _must_match(p: np.ndarray, claim: str, premise: str, question: str) -> np.ndarray:
    """A passage cannot support a claim stating a number that neither it nor the question contains, in digits
    or in words (the model alone misses a changed quantity some of the time; the rule never does): the support
    moves to "contradicted" when the passage states other numbers, else to "not enough information". Measured
    both ways in docs/benchmarks.md; names get no such rule (it cost more on HaluEval than it caught)."""
    if p[SUPPORTED] == 0:
        return p
    claimed = numbers(claim)
    if not claimed or not (claimed - stated_numbers(premise) - stated_numbers(question)):
        return p
    q = p.copy()
    q[CONTRADICTED if numbers(premise) else NEI] += q[SUPPORTED]
    q[SUPPORTED] = 0.0
    return q


def pad(encodings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """input_ids, attention_mask, token_type_ids of a batch of tokenizer encodings, zero-padded to the longest."""
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    mask, types = np.zeros_like(ids), np.zeros_like(ids)
    for j, e in enumerate(encodings):
        n = len(e.ids)
        ids[j, :n], mask[j, :n], types[j, :n] = e.ids, e.attention_mask, e.type_ids
    return ids, mask, types


class Verifier:
    """The ONNX cross-encoder. `score(premise, claims)` and `score_pairs(pairs)`; thread-safe."""

    def __init__(self, model: Path, tokenizer: Path, max_tokens: int = 256, threshold: float = 0.5,
                 threads: int | None = None, name: str = "verifier", numbers_rule: bool = True) -> None:
        for p, what in ((model, "model"), (tokenizer, "tokenizer")):
            if not Path(p).is_file():
                raise ModelError(f"verifier {what} {p}: not found; `sovrag check --method lexical` needs no model")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            self.tok = Tokenizer.from_file(str(tokenizer))
        except Exception as e:  # noqa: BLE001 - the tokenizers library raises plain Exceptions
            raise ModelError(f"verifier tokenizer {tokenizer}: cannot be read ({e})") from e
        self.tok.no_padding()
        self.tok.enable_truncation(max_length=max_tokens, strategy="longest_first")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ModelError(f"verifier model {model}: cannot be loaded ({str(e)[:200]}); it may be corrupt: "
                             "reinstall sovrag or retrain it; `--method lexical` needs no model") from e
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.max_tokens = max_tokens
        self.threshold = threshold
        self.name = name
        #: A claim stating a number its passage (and the question) do not is never supported (_must_match).
        self.numbers_rule = numbers_rule
        self._lock = threading.Lock()

    def count(self, text: str) -> int:
        return _count(self.tok, text)

    def _run(self, pairs: Sequence[tuple[str, str]], batch: int = 16) -> np.ndarray:
        out = []
        for i in range(0, len(pairs), batch):
            ids, mask, types = pad(self.tok.encode_batch([(p, c) for p, c in pairs[i:i + batch]]))
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            with self._lock:
                (logits,) = self.session.run(["logits"], {k: v for k, v in feed.items() if k in self.inputs})
            z = logits - logits.max(axis=1, keepdims=True)
            p = np.exp(z)
            out.append(p / p.sum(axis=1, keepdims=True))
        return np.concatenate(out) if out else np.zeros((0, 3))

    def score_pairs(self, pairs: Sequence[tuple[str, str]], question: str = "") -> list[Verdict]:
        """One Verdict per (premise, claim); long premises are windowed (max over windows). A claim stating a
        number or a name that neither the premise nor `question` contains is never supported."""
        jobs: list[tuple[int, str, str]] = []
        verdicts: list[Verdict | None] = [None] * len(pairs)
        for k, (premise, claim) in enumerate(pairs):
            premise, claim = (premise or "").strip(), (claim or "").strip()
            if not claim:
                raise SovragError("claim: empty; give a statement to check")
            if not premise:
                raise SovragError("passage: empty; give the text the claim should be checked against")
            why = outside_training(claim) or outside_training(premise)
            if why:
                verdicts[k] = Verdict(0.0, 0.0, 0.0, "", why)
                continue
            room = self.max_tokens - min(self.count(claim), self.max_tokens // 2) - 3
            for w in windows(split_sentences(premise), claim, room, self.count):
                jobs.append((k, w, claim))
        probs = self._run([(w, c) for _, w, c in jobs])
        for (k, w, c), p in zip(jobs, probs, strict=True):
            if self.numbers_rule:
                p = _must_match(p, c, pairs[k][0], question)
            best = verdicts[k]
            if best is None or p[SUPPORTED] > best.supported:
                verdicts[k] = Verdict(float(p[0]), float(p[1]), float(p[2]), w)
        return [v if v is not None else Verdict(0.0, 0.0, 1.0) for v in verdicts]

    def score(self, premise: str, claims: Sequence[str], question: str = "") -> list[Verdict]:
        return self.score_pairs([(premise, c) for c in claims], question)

    def supports(self, v: Verdict) -> bool:
        return not v.outside and v.supported >= self.threshold


_COUNTS: dict[tuple[int, str], int] = {}


def _count(tok, text: str) -> int:
    key = (id(tok), text)
    n = _COUNTS.get(key)
    if n is None:
        n = len(tok.encode(text, add_special_tokens=False).ids)
        if len(_COUNTS) > 200_000:
            _COUNTS.clear()
        _COUNTS[key] = n
    return n


def manifest(weights: Path = WEIGHTS) -> dict:
    path = weights / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"verifier manifest {path}: cannot be read ({e})") from e


_LOADED: dict[str, Verifier] = {}
_LOADED_LOCK = threading.Lock()


def load(path: str | Path | None = None, threshold: float | None = None) -> Verifier:
    """The verifier: the shipped one (registered in sovrag.models with its pinned sha256), or a
    `python -m sovrag.train verifier` output folder (model.onnx, tokenizer.json, manifest.json). Loaded once
    per process."""
    from sovrag.models.registry import get_spec, resolve_file

    if path in (None, "", "model"):
        spec = get_spec("verifier")
        model = resolve_file(Path("."), spec.name, "model.onnx")
        tok = resolve_file(Path("."), spec.name, "tokenizer.json")
        folder = model.parent
    else:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ModelError(f"verifier {folder}: not a folder (expected model.onnx, tokenizer.json, manifest.json "
                             "from `python -m sovrag.train verifier`)")
        model, tok = folder / "model.onnx", folder / "tokenizer.json"
    key = f"{folder.resolve()}|{threshold}"
    with _LOADED_LOCK:
        if key not in _LOADED:
            man = manifest(folder)
            if path not in (None, "", "model") and man.get("sha256") and model.is_file() \
                    and sha256(model) != man["sha256"]:
                raise ModelError(f"verifier model {model}: does not match the sha256 in its manifest (corrupt); "
                                 "retrain it, or use `--verify lexical`")
            _LOADED[key] = Verifier(model, tok, int(man.get("max_tokens", 256)),
                                    float(threshold if threshold is not None else man.get("threshold", 0.5)),
                                    name=str(man.get("name", "verifier")))
        return _LOADED[key]


# ---------------------------------------------------------------- claims as the verifier was trained to read them
_YES_NO = re.compile(r"^(?:is|are|was|were|am|do|does|did|can|could|will|would|should|shall|has|have|had|may|might|"
                     r"must|isn't|aren't|wasn't|weren't|don't|doesn't|didn't|can't|couldn't|won't|wouldn't|"
                     r"shouldn't|hasn't|haven't|hadn't)\b", re.IGNORECASE)
_POLARITY = re.compile(r"^(yes|no)\b[\s,.:;!—-]*(.*)$", re.IGNORECASE | re.DOTALL)


def is_yes_no(question: str) -> bool:
    """A question answered by yes or no ('does X ...', 'Is Y ...?'), not an alternative ('is it A or B?')."""
    q = (question or "").strip()
    return bool(_YES_NO.match(q)) and not re.search(r"\bor\b", q, re.IGNORECASE)


def qa_claim(question: str, answer: str) -> str:
    """A short answer read as the statement it makes ('...head office in what city? Delhi')."""
    return f"{question.strip()} {answer.strip()}"


def yes_no_claim(question: str, yes: bool) -> str:
    """A yes/no question and its answer as one statement a passage supports or contradicts."""
    q = question.strip().rstrip("?")
    return f'The answer to "{q[:1].upper() + q[1:]}?" is {"yes" if yes else "no"}.'


def polarity(sentence: str) -> tuple[bool | None, str]:
    """(True for 'Yes...', False for 'No...', None otherwise; the rest of the sentence)."""
    m = _POLARITY.match((sentence or "").strip())
    if not m:
        return None, sentence
    return m.group(1).lower() == "yes", m.group(2).strip()


def claims_of(sentence: str, question: str = "") -> list[str]:
    """What must hold for an answer sentence to be supported: its statement, with a bare or leading yes/no
    read against the question, and a short answer ('Delhi') read with it."""
    yes, rest = polarity(sentence)
    out = []
    if yes is not None and question and is_yes_no(question):
        out.append(yes_no_claim(question, yes))
        if len(content_terms(rest)) >= 3:
            out.append(rest)
        return out
    if question and len(words(sentence)) <= 4:
        return [qa_claim(question, sentence)]
    return [sentence]
