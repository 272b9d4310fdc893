"""The layers hold: the import-linter contracts in pyproject.toml (docs/architecture.md) pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"lint-imports failed:\n{result.stdout}\n{result.stderr}"


def test_the_review_app_never_imports_the_layers_above_it():
    console = ROOT / "console"
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in console.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if line.lstrip().startswith(("from api", "import api", "from reasoner", "import reasoner"))
    ]
    assert offenders == []


def test_the_code_is_ruff_clean():
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"ruff check failed:\n{result.stdout}\n{result.stderr}"
