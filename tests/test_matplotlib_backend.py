"""``matplotlib.use`` switches the backend of the whole process — of a test session or a notebook
that imports the module — so jdl/ never calls it, and experiments/ and benchmarks/ only under
``if __name__ == "__main__":``; figures are ``matplotlib.figure.Figure`` saved with ``fig.savefig``."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def backend_switches(source: str) -> list[int]:
    """Lines of ``matplotlib.use(...)`` / ``mpl.use(...)`` calls outside a top-level
    ``if __name__ == "__main__":`` block."""
    tree = ast.parse(source)
    main = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "use"
            and isinstance(node.func.value, ast.Name) and node.func.value.id in ("matplotlib", "mpl")
            and not any(m.lineno <= node.lineno <= m.end_lineno for m in main)]


def test_backend_switches_finds_calls_outside_the_main_block():
    source = ("import matplotlib\n\ndef plot():\n    matplotlib.use('Agg')\n\n"
              "if __name__ == '__main__':\n    matplotlib.use('Agg')\n")
    assert backend_switches(source) == [4]


def test_no_module_switches_the_backend_for_its_importer():
    found = {str(path.relative_to(ROOT)): lines for folder in ("jdl", "experiments", "benchmarks")
             for path in sorted((ROOT / folder).rglob("*.py")) if (lines := backend_switches(path.read_text()))}
    assert found == {}
