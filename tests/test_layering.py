"""The refit's rules, kept: no service layer holds SQL text or a dialect branch (the issue's own
check, `grep -rn "postgresql\\|text(" services/*/src/*/service_layer`, finds nothing), and no
function of an entrypoints module is a blueprint factory of more than 40 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_service_layer_holds_sql_text_or_a_dialect_branch():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted(ROOT.glob("services/*/src/*/service_layer/*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "postgresql" in line or "text(" in line
    ]
    assert found == []


def test_no_entrypoint_function_is_longer_than_40_lines():
    long = [
        f"{path.relative_to(ROOT)}: {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted(ROOT.glob("services/*/src/*/entrypoints/*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 40
    ]
    assert long == []
