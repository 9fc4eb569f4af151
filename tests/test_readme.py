"""The README's promises against the code: its configuration table, its two commands, CI."""
import re
import subprocess
from pathlib import Path

import importlib

from coc_shared.config import ENV_VARS, SERVICE_NAMES

for _service in SERVICE_NAMES:  # services declare their own variables when imported
    importlib.import_module("coc_" + _service.replace("-", "_") + ".service")

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _readme_table() -> dict[str, str]:
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.+?) \| (.+?) \|$", README, flags=re.M)
    return {name: default for name, default, _meaning in rows}


def test_every_environment_variable_is_documented_with_its_default():
    table = _readme_table()
    assert set(table) == set(ENV_VARS), f"README table differs from ENV_VARS: {set(table) ^ set(ENV_VARS)}"
    for name, (default, _meaning) in ENV_VARS.items():
        shown = table[name]
        if default:
            assert shown == f"`{default}`", f"{name}: README says {shown}, code says {default!r}"
        else:
            assert shown in ("(none)", "(empty)"), f"{name}: README shows a default the code does not have"


def test_no_code_reads_an_undeclared_environment_variable():
    """Configuration comes from ENV_VARS only: no os.environ/getenv reads elsewhere in services or shared."""
    offenders = []
    for path in list((ROOT / "shared" / "src").rglob("*.py")) + list((ROOT / "services").rglob("src/**/*.py")):
        text = path.read_text()
        for match in re.finditer(r"os\.(?:environ\.get|getenv)\(\s*[\"']([A-Z_]+)[\"']|os\.environ\[[\"']([A-Z_]+)[\"']\]", text):
            name = match.group(1) or match.group(2)
            if name not in ENV_VARS:
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, offenders


def test_quick_start_commands_exist_in_the_makefile():
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in quick_start and "make test" in quick_start
    targets = subprocess.run(["make", "-pRrq", "-f", str(ROOT / "Makefile")], capture_output=True, text=True, cwd=ROOT).stdout
    for target in ("run", "test", "install", "bench"):
        assert re.search(rf"^{target}:", targets, flags=re.M), f"Makefile has no {target} target"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    for service in ("pg_ctlcluster", "rabbitmq-server", "redis-server"):
        assert service in ci, f".ci/run does not start {service} when it is down"
