"""The shape of the code, checked from its imports: no import circles, and every import points down the layers.

Layers, lowest first (a module may import its own layer's neighbours and anything below):
    foundations  errors, config, types, text, offline, machine, tenancy, htmlreport, reports
    models       where open models come from
    backends     embed, store, generate, verifier, reranker
    collection   a store + an embedder
    stages       ingest, retrieve
    answer       the question journey
    measures     evaluate, bench, train
    serve        the HTTP server (services below routes)
    integrations LangChain, LlamaIndex and MCP over a server or a data directory
    cli          the terminal
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "sovrag"

LAYERS = [
    {"sovrag", "errors", "config", "types", "text", "offline", "machine", "tenancy", "htmlreport", "reports"},
    {"models"},
    {"embed", "store", "generate", "verifier", "reranker"},
    {"collection"},
    {"ingest", "retrieve"},
    {"answer"},
    {"evaluate", "bench", "train"},
    {"serve"},
    {"integrations"},
    {"cli"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _module(path: Path) -> str:
    parts = ["sovrag", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = SRC.parent / name.replace(".", "/")
    return rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file()


def imports() -> dict[str, set[str]]:
    """module -> the sovrag modules it imports (a `from pkg import submodule` counts as the submodule only)."""
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        mod, deps = _module(path), set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sovrag"):
                subs = [f"{node.module}.{a.name}" for a in node.names]
                if all(_is_module(s) for s in subs):
                    deps.update(subs)
                else:
                    deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("sovrag"))
        graph[mod] = {d for d in deps if d != mod}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "sovrag"


def test_no_module_imports_itself_back_through_others() -> None:
    assert _cycles(imports()) == []


def test_every_import_points_down_the_layers() -> None:
    upward = []
    for mod, deps in imports().items():
        for dep in deps:
            a, b = _package(mod), _package(dep)
            assert a in LAYER and b in LAYER, f"{a} or {b}: not placed in a layer (tests/test_architecture.py)"
            if a != b and LAYER[b] > LAYER[a]:
                upward.append(f"{mod} -> {dep}")
    assert upward == []


def test_the_servers_services_know_nothing_of_fastapi_or_routes() -> None:
    for path in (SRC / "serve" / "services").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        bad = {n for n in names if n.split(".")[0] in ("fastapi", "starlette")
               or n.startswith(("sovrag.serve.routes", "sovrag.serve.context"))}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_no_file_is_over_400_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_benchmarks_import_only_what_exists() -> None:
    """Benchmarks run rarely: a renamed function must fail here, not months later in a benchmark run."""
    import importlib

    missing = []
    for path in sorted((SRC.parent.parent / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sovrag"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name) and not _is_module(f"{node.module}.{alias.name}"):
                        missing.append(f"{path.name}: {node.module}.{alias.name}")
    assert missing == []
