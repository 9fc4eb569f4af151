"""The README's promises against the code: its configuration table, its two commands, CI."""

import re
import subprocess
from pathlib import Path

from coc_shared import envdoc
from coc_shared.config import ENV_VARS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_environment_variable_is_documented_with_its_default():
    assert envdoc.load_service_declarations() == [], (
        "every service must be installed (make install)"
    )
    documented = README.split(envdoc.BEGIN, 1)[1].split(envdoc.END, 1)[0].strip() + "\n"
    assert documented == envdoc.render_table(), (
        "README's configuration table differs from the declarations: run python -m "
        "coc_shared.envdoc --write"
    )
    for name in ENV_VARS:
        assert f"| `{name}` |" in documented


def test_no_code_reads_an_undeclared_environment_variable():
    """Configuration comes from declared variables only: no direct os.environ/getenv reads of
    others."""
    envdoc.load_service_declarations()
    offenders = []
    for path in list((ROOT / "shared" / "src").rglob("*.py")) + list(
        (ROOT / "services").rglob("src/**/*.py")
    ):
        text = path.read_text()
        for match in re.finditer(
            r"os\.(?:environ\.get|getenv)\(\s*[\"']([A-Z_]+)[\"']|os\.environ\[[\"']([A-Z_]+)[\"']\]",
            text,
        ):
            name = match.group(1) or match.group(2)
            if name not in ENV_VARS:
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, offenders


def test_quick_start_commands_exist_in_the_makefile():
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in quick_start and "make test" in quick_start
    targets = subprocess.run(
        ["make", "-pRrq", "-f", str(ROOT / "Makefile")], capture_output=True, text=True, cwd=ROOT
    ).stdout
    for target in ("run", "test", "install", "bench"):
        assert re.search(rf"^{target}:", targets, flags=re.M), f"Makefile has no {target} target"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    for service in ("pg_ctlcluster", "rabbitmq-server", "redis-server"):
        assert service in ci, f".ci/run does not start {service} when it is down"
