"""The package's structure: imports run one way down its layers, no modules import each other
in a loop (docs/how-it-fits-together.md, "The package layout"), and functions stay short."""

import ast
from pathlib import Path

import linecube

ROOT = Path(linecube.__file__).parent
# Lower rank = lower layer; a unit may import only from lower ranks (or from itself).
RANK = {
    "__init__": 0, "errors": 0,
    "atomic": 1, "bits": 1, "config": 1, "demarcation": 1, "devices": 1, "lines": 1,
    "outdir": 1, "progress": 1,
    "io": 2, "models": 2,
    "preprocess": 3,
    "store": 4,
    "simulate": 5, "training": 5,
    "analysis": 6,
    "viz": 7,
    "demo": 8,
    "cli": 9,
    "__main__": 10,
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(["linecube", *parts])


def _imports(path: Path, modules: set[str]) -> set[str]:
    """linecube modules imported by ``path`` (top level and inside functions); ``from package
    import submodule`` counts as the submodule."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("linecube"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("linecube"))
    return found


def _graph() -> dict[str, set[str]]:
    paths = {_module(p): p for p in ROOT.rglob("*.py")}
    return {name: {m for m in _imports(p, set(paths)) if m in paths and m != name}
            for name, p in paths.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_unit_has_a_layer():
    assert {_unit(m) for m in _graph()} <= set(RANK)


def test_imports_only_go_down():
    upward = sorted(f"{a} -> {b}" for a, targets in _graph().items() for b in targets
                    if _unit(a) != _unit(b) and RANK[_unit(b)] >= RANK[_unit(a)])
    assert upward == []


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_functions_stay_short_with_few_positional_parameters():
    """No function over 80 lines (def to last line) or with over 8 positional parameters."""
    long, wide = [], []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = f"{_module(path)}.{node.name}"
                if node.end_lineno - node.lineno + 1 > 80:
                    long.append(where)
                if len(node.args.posonlyargs) + len(node.args.args) > 8:
                    wide.append(where)
    assert long == [] and wide == []
