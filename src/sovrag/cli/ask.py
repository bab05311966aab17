"""`sovrag search`, `sovrag ask` and `sovrag chat`: the question's journey, printed (streamed or whole)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sovrag.cli.common import err, fail, out, settings
from sovrag.config import Settings
from sovrag.errors import SovragError

if TYPE_CHECKING:
    from pathlib import Path

    from sovrag.types import Answer


def search(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="What to look for")],
    collection: Annotated[str, typer.Option("--collection", "-c")],
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25")] = "hybrid",
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="key=value on chunk metadata "
                                                      "(repeatable; same key = any of)")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=1000)] = 5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    tenant: Annotated[str | None, typer.Option(help="A server tenant's collection of this name")] = None,
    rerank: Annotated[bool, typer.Option("--rerank", help="Reorder hybrid search's best 20 with the trained "
                                         "reranker; scores become P(the chunk answers)")] = False,
) -> None:
    """Print the chunks that best match a question, ranked, with source and score."""
    from sovrag.cli.remote import owner, store_collection
    from sovrag.collection import open_collection
    from sovrag.reranker import reranker_of
    from sovrag.retrieve import parse_filters
    from sovrag.retrieve import search as run_search
    from sovrag.types import Chunk, ScoredChunk

    try:
        s = settings(ctx)
        filters = parse_filters(filter_ or [])
        server = owner(s)
        if server is not None:  # the running server owns the data directory: it searches for us
            rows = server.search({"collection": collection, "tenant": tenant, "query": question, "top_k": top_k,
                                  "mode": mode, "filters": filters or None, "rerank": rerank})
            hits = [ScoredChunk(Chunk.from_payload(r.pop("id"), {k: v for k, v in r.items() if k not in
                                                                 ("rank", "score")}), r["score"], r["rank"])
                    for r in rows]
        else:
            with open_collection(s, store_collection(s, collection, tenant, ctx.meta.get("config_file"))) as col:
                hits = run_search(col, question, top_k=top_k, mode=mode, filters=filters,  # type: ignore[arg-type]
                                  reranker=reranker_of(s) if rerank else None)
    except SovragError as e:
        fail(e)
        return
    if as_json:
        out.print_json(json.dumps([{
            "rank": h.rank, "score": h.score, "id": h.chunk.id, "source": h.chunk.source,
            "title": h.chunk.title, "page": h.chunk.page, "headings": list(h.chunk.headings),
            "text": h.chunk.text} for h in hits]))
        return
    if not hits:
        out.print("no matching chunks")
        return
    for h in hits:
        where = h.chunk.source
        if h.chunk.page:
            where += f", page {h.chunk.page}"
        if h.chunk.headings:
            where += " › " + " › ".join(h.chunk.headings)
        snippet = " ".join(h.chunk.text.split())
        snippet = snippet[:300] + ("…" if len(snippet) > 300 else "")
        out.print(f"[bold]{h.rank}.[/] [cyan]{where}[/]  [dim]score {h.score:.4f}[/]", highlight=False)
        out.print(f"   {snippet}", highlight=False)


# ---------------------------------------------------------------- ask
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question")],
    collection: Annotated[str, typer.Option("--collection", "-c")],
    llm: Annotated[str | None, typer.Option(help="LLM spec: llamacpp:NAME|PATH.gguf, openai://host/v1?model=m, "
                                            "or a profile: fast, quality [env SOVRAG_LLM]")] = None,
    stream: Annotated[bool, typer.Option(help="Print the answer sentence by sentence as it is generated and "
                                         "verified")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full Answer as JSON")] = False,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=50, help="Passages to retrieve")] = 6,
    mode: Annotated[str, typer.Option(help="Retrieval: hybrid, dense or bm25")] = "hybrid",
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="key=value on chunk metadata")] = None,
    no_compress: Annotated[bool, typer.Option("--no-compress", help="Give the model whole chunks")] = False,
    max_tokens: Annotated[int, typer.Option(min=1, max=4096, help="Longest answer in tokens")] = 256,
    tenant: Annotated[str | None, typer.Option(help="A server tenant's collection of this name")] = None,
    verify: Annotated[str | None, typer.Option(help="How sentences are checked: model (the trained verifier), "
                                               "lexical (no model) or a trained verifier's folder "
                                               "[env SOVRAG_VERIFY]")] = None,
    unsupported: Annotated[str | None, typer.Option(help="An unsupported sentence is marked or withheld: mark, "
                                                    "withhold [env SOVRAG_UNSUPPORTED]")] = None,
    rerank: Annotated[str | None, typer.Option(help="Second-stage retrieval and the answerability gate: model "
                                               "(the trained reranker), off, or a trained reranker's folder "
                                               "[env SOVRAG_RERANK]")] = None,
) -> None:
    """Answer a question from a collection, citing the passages that support each sentence."""
    from sovrag.retrieve import parse_filters
    from sovrag.types import Answer

    try:
        s = settings(ctx).with_overrides(verify=verify, unsupported=unsupported, rerank=rerank)
    except SovragError as e:
        fail(e)
        return
    answer: Answer | None = None
    try:
        request = {"collection": collection, "tenant": tenant, "question": question, "top_k": top_k, "mode": mode,
                   "filters": parse_filters(filter_ or []) or None, "compress": not no_compress,
                   "max_tokens": max_tokens}
        items = _journey(s, request, llm, ctx.meta.get("config_file"))
        if stream and not as_json:
            for item in items:
                if isinstance(item, Answer):
                    answer = item
                else:
                    out.print(item, end="", highlight=False, soft_wrap=True)
            out.print()
        else:
            with err.status("retrieving and generating…", spinner="dots"):
                *_, answer = items  # type: ignore[assignment]
    except SovragError as e:
        fail(e)
        return
    assert isinstance(answer, Answer)
    if as_json:
        out.print_json(json.dumps(answer.to_dict()))
        return
    _print_answer(answer, streamed=stream)


def _journey(s: Settings, request: dict[str, Any], llm: str | None,
             config_file: Path | None = None) -> Iterator[str | Answer]:
    """The question journey's items (text deltas, then the Answer): through the server that owns the data
    directory when one runs, else here."""
    with _Asker(s, request, llm, config_file) as asker:
        yield from asker.ask(request["question"])


class _Asker:
    """Answers questions on one collection: through the server that owns the data directory when one runs, else
    here with the collection and the model opened once (a `sovrag chat` conversation asks many)."""

    def __init__(self, s: Settings, request: dict[str, Any], llm: str | None,
                 config_file: Path | None = None) -> None:
        from sovrag.cli.remote import owner

        self.s, self.request, self.llm_spec, self.config_file = s, request, llm, config_file
        self.server = owner(s)
        if self.server is not None and llm:
            raise SovragError(f"--llm {llm}: the server (process {self.server.pid}) that owns this data directory "
                              "answers with its own model; stop it to use another one here")
        self.pipeline: Any = None
        self.col: Any = None

    def _open(self) -> Any:
        from sovrag.answer import AnswerOptions, AnswerPipeline
        from sovrag.cli.remote import store_collection
        from sovrag.collection import open_collection
        from sovrag.generate import create_llm

        if self.pipeline is None:
            r, s = self.request, self.s
            options = AnswerOptions.of(s, top_k=r["top_k"], mode=r["mode"], filters=r["filters"],
                                       compress=r["compress"], max_tokens=r["max_tokens"])
            col = self.col or open_collection(s, store_collection(s, r["collection"], r["tenant"],
                                                                       self.config_file))
            self.col = col  # kept open (and closed on exit) even when what follows fails: a next question reuses it
            if col.store.count() == 0:
                raise SovragError(f"collection {r['collection']!r}: is empty; ingest documents into it first")
            with err.status("loading the model…", spinner="dots"):
                model = create_llm(s, self.llm_spec)
            self.pipeline = AnswerPipeline(col, model, options)
        return self.pipeline

    def ask(self, question: str, history: list[tuple[str, str]] | None = None) -> Iterator[str | Answer]:
        from sovrag.answer.followup import Turn
        from sovrag.types import Answer

        turns = history or []
        if self.server is not None:
            body = {**self.request, "question": question, "history": [{"role": r, "text": t} for r, t in turns]}
            for item in self.server.ask(body):
                yield item["delta"] if "delta" in item else Answer.from_dict(item["answer"])
            return
        yield from self._open().stream(question, [Turn(r, t) for r, t in turns])

    def __enter__(self) -> _Asker:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.col is not None:
            self.col.close()


def chat(
    ctx: typer.Context,
    collection: Annotated[str, typer.Option("--collection", "-c")],
    llm: Annotated[str | None, typer.Option(help="LLM spec or profile (fast, quality) [env SOVRAG_LLM]")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=50, help="Passages to retrieve")] = 6,
    mode: Annotated[str, typer.Option(help="Retrieval: hybrid, dense or bm25")] = "hybrid",
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="key=value on chunk metadata")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, max=4096, help="Longest answer in tokens")] = 256,
    tenant: Annotated[str | None, typer.Option(help="A server tenant's collection of this name")] = None,
) -> None:
    """A conversation about a collection in the terminal: each answer streamed once verified, with its sources;
    follow-up questions ("and for part-timers?") are understood. /clear forgets the conversation, /exit ends it."""
    from sovrag.retrieve import parse_filters
    from sovrag.types import Answer

    try:
        s = settings(ctx)
        request = {"collection": collection, "tenant": tenant, "top_k": top_k, "mode": mode,
                   "filters": parse_filters(filter_ or []) or None, "compress": True, "max_tokens": max_tokens}
        asker = _Asker(s, request, llm, ctx.meta.get("config_file"))
    except SovragError as e:
        fail(e)
        return
    history: list[tuple[str, str]] = []
    err.print(f"[dim]Asking collection {collection!r}. /clear forgets the conversation, /exit (or Ctrl-D) ends "
              "it.[/]", highlight=False)
    with asker:
        while True:
            try:
                question = input("\n› ").strip()
            except (EOFError, KeyboardInterrupt):
                out.print()
                return
            if not question:
                continue
            if question in ("/exit", "/quit"):
                return
            if question == "/clear":
                history.clear()
                err.print("[dim]Conversation cleared.[/]", highlight=False)
                continue
            answer: Answer | None = None
            try:
                for item in asker.ask(question, history):
                    if isinstance(item, Answer):
                        answer = item
                    else:
                        out.print(item, end="", highlight=False, soft_wrap=True)
                out.print()
            except SovragError as e:  # one failed question does not end the conversation
                err.print(f"[bold red]error:[/] {e}", highlight=False)
                continue
            except KeyboardInterrupt:
                out.print("\n[dim](stopped)[/]", highlight=False)
                continue
            assert answer is not None
            _print_answer(answer, streamed=True)
            history += [("user", question), ("assistant", answer.text)]


def _print_answer(answer: object, streamed: bool) -> None:
    from sovrag.types import Answer

    assert isinstance(answer, Answer)
    style = "yellow" if answer.abstained else "bold"
    if not streamed:  # a streamed answer is already on screen: it was printed sentence by sentence, verified
        out.print(f"[{style}]{answer.text}[/]", highlight=False)
    if answer.abstained:
        out.print(f"[dim]({answer.abstain_reason})[/]", highlight=False)
    unsupported = [s.text for s in answer.sentences if not s.supported]
    if unsupported and not answer.abstained:
        how = "withheld" if "[unsupported]" not in answer.text else "marked [unsupported]"
        out.print(f"[yellow]{len(unsupported)} sentence(s) not supported by any source are {how}.[/]",
                  highlight=False)
    for sent in answer.sentences:
        if sent.contradicted_by and not answer.abstained:
            out.print(f"[red]contradicted by {', '.join(f'[{n}]' for n in sent.contradicted_by)}:[/] {sent.text}",
                      highlight=False)
    for c in answer.contradictions:
        out.print(f"[red]sources disagree:[/] [{c.source_a}] \"{c.claim_a}\" vs [{c.source_b}] \"{c.claim_b}\"",
                  highlight=False)
    cited = {c.source for s in answer.sentences for c in s.citations}
    out.print()
    for src in answer.sources:
        if not answer.abstained and src.number not in cited:
            continue
        where = src.chunk.source
        if src.chunk.page:
            where += f", page {src.chunk.page}"
        if src.chunk.headings:
            where += " › " + " › ".join(src.chunk.headings)
        snippet = " ".join(src.text.split())
        out.print(f"[bold][{src.number}][/] [cyan]{where}[/]", highlight=False)
        out.print(f"    {snippet[:240]}{'…' if len(snippet) > 240 else ''}", highlight=False)
    t = answer.timings
    out.print(f"[dim]{answer.model} · {answer.prompt_tokens} prompt + {answer.completion_tokens} completion tokens"
              f" · {t.get('total_s', 0):.1f} s[/]", highlight=False)
