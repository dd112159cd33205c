"""The static import graph of recgen (every import statement, function-local ones included, read with ast): no
cycles between modules, and no module importing one of a higher layer (docs/ARCHITECTURE.md, "Import directions").
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "recgen"

# Lowest first; a module may import its own layer and the ones before it. A top-level module not named here is in
# the foundation (layer 0), so a new one starts there and must earn a higher place; a package's cli.py is in the
# top layer.
LAYERS = [
    {"recgen", "recgen.errors", "recgen.lazy", "recgen.files", "recgen.config", "recgen.device", "recgen.progress",
     "recgen.machine", "recgen.weights", "recgen.plots", "recgen.cli_kit"},
    {"recgen.data"},
    {"recgen.features", "recgen.runs", "recgen.task", "recgen.train", "recgen.tblog", "recgen.defaults",
     "recgen.sanity", "recgen.report", "recgen.text"},
    {"recgen.evaluate"},
    {"recgen.classify", "recgen.generate", "recgen.restore", "recgen.detect"},
    {"recgen.loop"},
    {"recgen.serve", "recgen.cli", "recgen.demo", "recgen.export", "recgen.bench", "recgen.__main__"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_only(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(name: str) -> set[str]:
    """The recgen modules `name` imports anywhere in its source (a `from pkg import sub` of a submodule counts as
    importing the submodule)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        if _type_checking_only(node, parents):
            continue
        for t in targets:
            while t and t not in MODULES:  # `import recgen.data.sources as s`, names inside a module
                t = t.rpartition(".")[0]
            if t.startswith("recgen") and t != name:
                out.add(t)
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def layer(module: str) -> int:
    if module.endswith(".cli"):  # a task's commands (recgen/detect/cli.py, ...) belong with recgen/cli.py
        return len(LAYERS) - 1
    for i, members in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members if m != "recgen"):
            return i
    return 0


def test_the_graph_sees_function_local_imports():
    # recgen/cli.py imports each task's code inside the commands (CLI start-up without torch)
    assert "recgen.classify.api" in GRAPH["recgen.loop.judge"] or "recgen.classify" in GRAPH["recgen.loop.judge"]
    assert len(GRAPH) > 60


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    detail = [" <-> ".join(c) + ": " + "; ".join(f"{a} -> {b}" for a in c for b in sorted(GRAPH[a]) if b in c)
              for c in cycles]
    assert not cycles, "import cycles:\n" + "\n".join(detail)


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_a_higher_layer():
    upward = sorted(f"{m} (layer {layer(m)}) -> {t} (layer {layer(t)})"
                    for m, targets in GRAPH.items() for t in targets if layer(t) > layer(m))
    assert not upward, "imports against the layering:\n" + "\n".join(upward)
