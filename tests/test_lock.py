"""requirements.lock against what declares the dependencies and what installs them, offline.

One lock file pins every package (the services' runtime dependencies, the test, lint and bench
tools) with its hashes; `make lock` regenerates it from requirements.in, which names the local
packages (their pyproject.toml files) and the dev tools. These tests fail when

- a dependency declared in a pyproject.toml (``[project] dependencies`` and every optional group)
  or in requirements.in is missing from the lock, or locked at a version its specifier excludes;
- the lock pins something loosely, without hashes, or pins a local package;
- a pyproject.toml (or one of its optional groups) is not an input of the lock;
- a benchmark-only dependency is declared by a package or imported outside bench/;
- the Makefile's install (what make test, make run and CI run) installs anything other than the
  lock's pins and the local packages without resolving, or does not re-run when the lock or a
  pyproject.toml changes;
- a service's Dockerfile installs without the lock as constraints (or installs the whole lock, dev
  tools included), or .dockerignore keeps the lock out of the build context.

Each check is a function returning the problems it finds, as sentences; the ``*_reports_*`` tests
break a copy of the inputs in one way each and expect the check to say so.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib.metadata
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = "requirements.lock"
LOCK_INPUT = "requirements.in"
BENCH_SECTION = "bench"

# ----------------------------------------------------------------------------------------------
# reading


@dataclasses.dataclass(frozen=True)
class Sources:
    lock: str
    lock_input: str
    pyprojects: dict  # path relative to the root -> text


@dataclasses.dataclass(frozen=True)
class Pin:
    name: str
    requirement: Requirement
    hashes: tuple


def read_sources() -> Sources:
    paths = [
        ROOT / "shared" / "pyproject.toml",
        *sorted((ROOT / "services").glob("*/pyproject.toml")),
    ]
    return Sources(
        lock=(ROOT / LOCK).read_text(),
        lock_input=(ROOT / LOCK_INPUT).read_text(),
        pyprojects={str(p.relative_to(ROOT)): p.read_text() for p in paths},
    )


def logical_lines(text: str) -> list[str]:
    """A requirements file's lines, continuations joined, comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def lock_pins(lock: str) -> tuple[list[Pin], list[str]]:
    """The lock's pins, and the problems of lines that are not an exact, hashed pin."""
    pins, problems = [], []
    for line in logical_lines(lock):
        if line.startswith("-"):
            problems.append(
                f"{LOCK}: `{line}` is an option line, not a pin (make lock leaves the local "
                "packages out)"
            )
            continue
        hashes = tuple(re.findall(r"--hash=(\S+)", line))
        spec = re.sub(r"\s--hash=\S+", "", " " + line).strip()
        try:
            requirement = Requirement(spec)
        except InvalidRequirement as exc:
            problems.append(f"{LOCK}: `{spec}` is not a requirement ({exc})")
            continue
        specifiers = list(requirement.specifier)
        if (
            requirement.url
            or len(specifiers) != 1
            or specifiers[0].operator != "=="
            or "*" in specifiers[0].version
        ):
            problems.append(f"{LOCK}: `{spec}` is not an exact pin (name==version)")
        if not hashes:
            problems.append(f"{LOCK}: `{spec}` has no --hash")
        pins.append(Pin(canonicalize_name(requirement.name), requirement, hashes))
    return pins, problems


def input_sections(lock_input: str) -> list[tuple[str, str]]:
    """(section, line) of requirements.in's requirement lines; a comment `# [name] ...` opens a
    section."""
    result, section = [], "packages"
    for raw in lock_input.splitlines():
        header = re.match(r"\s*#\s*\[([a-z0-9_-]+)\]", raw)
        if header:
            section = header.group(1)
            continue
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            result.append((section, line))
    return result


def local_packages(sources: Sources) -> dict[str, dict]:
    """pyproject path -> its [project] table."""
    return {
        path: tomllib.loads(text).get("project", {}) for path, text in sources.pyprojects.items()
    }


def declared_requirements(sources: Sources) -> list[tuple[str, Requirement]]:
    """(where, requirement) of every dependency declared in a pyproject.toml or in
    requirements.in."""
    declared = []
    for path, project in local_packages(sources).items():
        for spec in project.get("dependencies", []):
            declared.append((f"{path} [project] dependencies", Requirement(spec)))
        for group, specs in project.get("optional-dependencies", {}).items():
            for spec in specs:
                declared.append((f"{path} optional-dependencies.{group}", Requirement(spec)))
    for section, line in input_sections(sources.lock_input):
        if not line.startswith("-"):
            declared.append((f"{LOCK_INPUT} [{section}]", Requirement(line)))
    return declared


def extra_requirements(name: str, extra: str) -> list[Requirement]:
    """What ``name[extra]`` adds, from the installed distribution's metadata ([] if not
    installed)."""
    try:
        requires = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    result = []
    for spec in requires:
        requirement = Requirement(spec)
        if (
            requirement.marker
            and requirement.marker.evaluate({"extra": extra})
            and not requirement.marker.evaluate({"extra": ""})
        ):
            result.append(requirement)
    return result


# ----------------------------------------------------------------------------------------------
# checks of the lock and its inputs


def check_declared_are_locked(sources: Sources) -> list[str]:
    """Every declared dependency (and what its extras add) is locked, at a version it allows."""
    pins, _ = lock_pins(sources.lock)
    by_name: dict[str, list[Pin]] = {}
    for pin in pins:
        if pin.requirement.marker is None or pin.requirement.marker.evaluate({"extra": ""}):
            by_name.setdefault(pin.name, []).append(pin)
    local = {canonicalize_name(p.get("name", "")) for p in local_packages(sources).values()}
    problems = []

    def check(where: str, requirement: Requirement, extra: str = ""):
        name = canonicalize_name(requirement.name)
        if name in local or (
            requirement.marker and not requirement.marker.evaluate({"extra": extra})
        ):
            return
        locked = by_name.get(name)
        if not locked:
            problems.append(f"{where}: {requirement} is not in {LOCK} (run make lock)")
            return
        versions = [next(iter(p.requirement.specifier)).version for p in locked]
        if not any(requirement.specifier.contains(v, prereleases=True) for v in versions):
            problems.append(
                f"{where}: {requirement}, but {LOCK} pins {name}=={', '.join(versions)} (run make "
                "lock)"
            )

    for where, requirement in declared_requirements(sources):
        check(where, requirement)
        for extra in sorted(requirement.extras):
            for added in extra_requirements(requirement.name, extra):
                check(f"{where} ({requirement.name}[{extra}])", added, extra)
    return problems


def check_lock_is_exact(sources: Sources) -> list[str]:
    """The lock holds exact, hashed pins only, and none of the local packages."""
    pins, problems = lock_pins(sources.lock)
    local = {canonicalize_name(p.get("name", "")) for p in local_packages(sources).values()}
    problems += [
        f"{LOCK} pins the local package {pin.name} (make lock must leave it out: --no-emit-package)"
        for pin in pins
        if pin.name in local
    ]
    if not pins:
        problems.append(f"{LOCK} pins nothing")
    return problems


def check_every_package_is_an_input(sources: Sources) -> list[str]:
    """requirements.in names each pyproject.toml's folder (-e ./dir) with all its optional
    groups."""
    problems = []
    editables = {}
    for _section, line in input_sections(sources.lock_input):
        match = re.fullmatch(r"-e\s+(?:\./)?([^\[\s]+?)/?(?:\[([^\]]*)\])?", line)
        if match:
            editables[match.group(1)] = {
                e.strip() for e in (match.group(2) or "").split(",") if e.strip()
            }
    for path, project in local_packages(sources).items():
        folder = str(PurePosixPath(path).parent)
        if folder not in editables:
            problems.append(
                f"{LOCK_INPUT} does not name {folder} (-e ./{folder}): its dependencies are not "
                "locked"
            )
            continue
        for group in project.get("optional-dependencies", {}):
            if group not in editables[folder]:
                problems.append(
                    f"{LOCK_INPUT}: -e ./{folder} does not request [{group}], so the lock leaves "
                    f"that group of {path} out"
                )
    return problems


def python_files_outside_bench() -> dict[str, str]:
    files = {}
    skip = {
        ".git",
        ".venv",
        "bench",
        "var",
        "build",
        "dist",
        "node_modules",
        ".hypothesis",
        ".pytest_cache",
    }
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
        for name in names:
            if name.endswith(".py"):
                path = Path(folder) / name
                try:
                    files[str(path.relative_to(ROOT))] = path.read_text()
                except (OSError, UnicodeDecodeError):
                    pass
    return files


def check_bench_only(sources: Sources, files: dict[str, str]) -> list[str]:
    """A requirement of requirements.in's [bench] section: no package declares it, nothing outside
    bench/ imports it."""
    bench = [
        Requirement(line)
        for section, line in input_sections(sources.lock_input)
        if section == BENCH_SECTION and not line.startswith("-")
    ]
    problems = []
    runtime = [
        (where, r) for where, r in declared_requirements(sources) if where.endswith("dependencies")
    ]
    for requirement in bench:
        name = canonicalize_name(requirement.name)
        for where, declared in runtime:
            if canonicalize_name(declared.name) == name:
                problems.append(
                    f"{where} declares {declared.name}, a benchmark-only dependency ({LOCK_INPUT} "
                    "[bench])"
                )
        module = name.replace("-", "_")
        pattern = re.compile(
            rf"^\s*(?:import\s+{module}\b|from\s+{module}(?:\.|\s+import\b))", re.M
        )
        for path, text in sorted(files.items()):
            if pattern.search(text):
                problems.append(
                    f"{path} imports {module}, a benchmark-only dependency ({LOCK_INPUT} [bench]): "
                    "move it to another section of requirements.in"
                )
    return problems


def check_dockerignore(text: str) -> list[str]:
    """The build context keeps requirements.lock (the Dockerfiles COPY it)."""
    excluded = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").lstrip("/")
        patterns = {pattern, pattern[3:]} if pattern.startswith("**/") else {pattern}
        if any(fnmatch.fnmatchcase(LOCK, p) for p in patterns):
            excluded = not negate
    return [f".dockerignore excludes {LOCK}, which the Dockerfiles copy"] if excluded else []


# ----------------------------------------------------------------------------------------------
# install commands (Makefile, Dockerfiles, CI)

_VALUE_OPTIONS = {
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-e",
    "--editable",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "--python",
    "-b",
    "--build-constraint",
    "--upgrade-strategy",
    "--only-binary",
    "--no-binary",
    "--src",
    "-C",
    "--config-settings",
    "--no-emit-package",
    "-o",
    "--output-file",
}


@dataclasses.dataclass
class Install:
    command: str
    requirement_files: list
    constraints: list
    editables: list
    targets: list
    flags: set


def simple_commands(text: str) -> list[str]:
    """Shell text split at &&, ||, ;, braces and newlines (enough for recipes and RUN lines)."""
    return [c.strip() for c in re.split(r"&&|\|\||;|(?<!\S)[{}](?!\S)|\n", text) if c.strip()]


def as_install(command: str) -> Install | None:
    """The pip/uv install in ``command``, None if it installs nothing."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    for i, word in enumerate(words):
        tool = Path(word).name
        if tool in ("pip", "pip3") and words[i + 1 : i + 2] == ["install"]:
            rest = words[i + 2 :]
            break
        if tool == "uv" and words[i + 1 : i + 3] == ["pip", "install"]:
            rest = words[i + 3 :]
            break
    else:
        return None
    install = Install(command, [], [], [], [], set())
    j = 0
    while j < len(rest):
        word = rest[j]
        option, _, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if option in _VALUE_OPTIONS:
            value = inline or (rest[j + 1] if j + 1 < len(rest) else "")
            j += 1 if inline else 2
            if option in ("-r", "--requirement"):
                install.requirement_files.append(value)
            elif option in ("-c", "--constraint"):
                install.constraints.append(value)
            elif option in ("-e", "--editable"):
                install.editables.append(value)
            continue
        if word.startswith("-"):
            install.flags.add(option)
        elif word in (">", ">>", "2>", "2>&1", "|") or word.startswith((">", "2>")):
            break
        else:
            install.targets.append(word)
        j += 1
    return install


def makefile_commands(makefile: str, target: str) -> tuple[list[str], str]:
    """The commands `make -B -n TARGET` prints for this Makefile text (nothing runs), and errors."""
    result = subprocess.run(
        ["make", "-B", "-n", "-f", "-", target],
        input=makefile,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return simple_commands(
        result.stdout.replace("\\\n", " ")
    ), result.stderr if result.returncode else ""


def makefile_prerequisites(makefile: str) -> dict[str, list[str]]:
    """target -> prerequisites (order-only ones included) from make's database."""
    result = subprocess.run(
        ["make", "-p", "-R", "-r", "-q", "-f", "-", "install"],
        input=makefile,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    rules = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^([^\s#:=][^:=]*?):(?![:=])\s*(.*)$", line)
        if match and not line.startswith("\t"):
            rules.setdefault(match.group(1).strip(), []).extend(
                w for w in match.group(2).split() if w != "|"
            )
    return rules


def check_makefile(makefile: str, sources: Sources) -> list[str]:
    """make install installs the lock's pins (hash-checked), then every local package editable
    without resolving; install (hence test and run) re-runs when the lock or a pyproject.toml
    changes; make lock regenerates the lock, hashed, from requirements.in, leaving the local
    packages out."""
    commands, error = makefile_commands(makefile, "install")
    if error:
        return [f"Makefile: make -n install fails: {error.strip()}"]
    problems = _install_commands(commands, sources)
    problems += _reinstall_triggers(makefile, sources)
    problems += _lock_commands(makefile, sources)
    return problems


def _install_commands(commands: list[str], sources: Sources) -> list[str]:
    """make install's commands install the lock's pins alone, then each local package editable
    without resolving its dependencies again."""
    problems = []
    folders = [str(PurePosixPath(p).parent) for p in sources.pyprojects]
    installs = [i for i in map(as_install, commands) if i is not None]
    pins_installed, editables = False, set()
    for install in installs:
        problem = None
        if LOCK in install.requirement_files:
            pins_installed = True
            if install.targets or install.editables or set(install.requirement_files) != {LOCK}:
                problem = "installs more than the lock's pins"
        elif install.editables or install.targets:
            local = [t.rstrip("/").removeprefix("./") for t in install.editables + install.targets]
            if not ({"--no-deps"} & install.flags) and LOCK not in install.constraints:
                problem = (
                    "installs packages without --no-deps, so pip resolves their dependencies again"
                )
            elif any(t not in folders for t in local):
                problem = (
                    f"installs {', '.join(t for t in local if t not in folders)}, which the "
                    "lock does not pin"
                )
            editables |= {t for t in install.editables}
        else:
            problem = "installs requirements that are not the lock's"
        if problem:
            problems.append(f"Makefile install: `{install.command}` {problem}")
    if not pins_installed:
        problems.append(
            f"Makefile install does not install the lock (pip install --require-hashes -r {LOCK})"
        )
    for folder in folders:
        if folder not in {e.rstrip("/").removeprefix("./") for e in editables}:
            problems.append(
                f"Makefile install does not install {folder} editable (--no-deps -e {folder})"
            )
    return problems


def _reinstall_triggers(makefile: str, sources: Sources) -> list[str]:
    """make install, test and run depend on the lock and on every pyproject.toml."""
    problems = []
    rules = makefile_prerequisites(makefile)
    for target in ("install", "test", "run"):
        seen, todo = set(), [target]
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo += rules.get(node, [])
        for needed in [LOCK, *sources.pyprojects]:
            if needed not in seen:
                problems.append(
                    f"Makefile: `make {target}` does not re-install when {needed} changes "
                    "(not a prerequisite of the install stamp)"
                )
    return problems


def _lock_commands(makefile: str, sources: Sources) -> list[str]:
    """make lock compiles requirements.in into the lock, with hashes, leaving the local packages
    out."""
    problems = []
    commands, error = makefile_commands(makefile, "lock")
    if error:
        return [f"Makefile: make -n lock fails: {error.strip()}"]
    compiles = [c for c in commands if re.search(r"\buv pip compile\b|\bpip-compile\b", c)]
    if not compiles:
        problems.append(f"Makefile: make lock does not compile {LOCK_INPUT} (uv pip compile)")
    for command in compiles:
        words = shlex.split(command)
        if LOCK_INPUT not in words:
            problems.append(f"Makefile lock: `{command}` does not read {LOCK_INPUT}")
        if not re.search(rf"(-o|--output-file)[ =]{re.escape(LOCK)}\b", command):
            problems.append(f"Makefile lock: `{command}` does not write {LOCK}")
        if "--generate-hashes" not in words:
            problems.append(f"Makefile lock: `{command}` does not --generate-hashes")
        for project in local_packages(sources).values():
            if f"--no-emit-package {project.get('name')}" not in command:
                problems.append(
                    f"Makefile lock: `{command}` would pin the local package {project.get('name')} "
                    f"(--no-emit-package {project.get('name')})"
                )
    return problems


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    instructions, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not current and not stripped):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, rest = current.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def _absolute(path: str, workdir: str) -> str:
    return os.path.normpath(path if path.startswith("/") else os.path.join(workdir, path))


def _copied_lock(rest: str, workdir: str) -> str | None:
    """Where the COPY or ADD instruction ``rest`` puts the lock, if it copies it."""
    words = [w for w in shlex.split(rest) if not w.startswith("--")]
    if len(words) >= 2 and LOCK in [w.rstrip("/") for w in words[:-1]]:
        dest = words[-1]
        return _absolute(
            os.path.join(dest, LOCK) if dest.endswith("/") or dest == "." else dest, workdir
        )
    return None


def _run_installs(
    where: str, rest: str, workdir: str, lock_paths: set, derived: set, installed: set
) -> list[str]:
    """The problems of the pip installs of the RUN instruction ``rest``; adds to ``derived`` the
    files it writes from the lock, and to ``installed`` what it installs with the lock as
    constraints."""
    problems = []
    for command in simple_commands(rest):
        words = command.split()
        redirect = re.search(r">\s*(\S+)", command)
        if redirect and any(
            _absolute(w, workdir) in lock_paths | derived for w in words if not w.startswith("-")
        ):
            derived.add(_absolute(redirect.group(1), workdir))
        install = as_install(command)
        if install is None:
            continue
        files = {_absolute(f, workdir) for f in install.requirement_files}
        constraints = {_absolute(c, workdir) for c in install.constraints}
        targets = [_absolute(t, workdir) for t in install.targets + install.editables]
        if files & lock_paths:
            problems.append(
                f"{where}: `{command}` installs the whole lock, dev tools included; "
                f"use it as constraints (-c {LOCK}) with the service's folders"
            )
        elif constraints & lock_paths:
            installed.update(targets)
        elif files and files <= derived and not targets:
            pass  # a part of the lock, hashes included (uv's own pin)
        else:
            problems.append(
                f"{where}: `{command}` installs without the lock as constraints (-c {LOCK})"
            )
    return problems


def check_dockerfile(service: str, text: str) -> list[str]:
    """The image COPYs the lock and installs the service and shared with the lock as constraints, so
    only their runtime dependencies, at the locked versions; nothing is installed without the
    lock."""
    where = f"services/{service}/Dockerfile"
    problems, workdir, lock_paths, derived = [], "/", set(), set()
    service_dir, shared_dir = f"/app/services/{service}", "/app/shared"
    installed = set()
    for keyword, rest in dockerfile_instructions(text):
        if keyword == "WORKDIR":
            workdir = _absolute(rest, workdir)
        elif keyword in ("COPY", "ADD"):
            copied = _copied_lock(rest, workdir)
            if copied is not None:
                lock_paths.add(copied)
        elif keyword == "RUN":
            problems += _run_installs(where, rest, workdir, lock_paths, derived, installed)
    if not lock_paths:
        problems.append(f"{where} does not COPY {LOCK}")
    for folder in (shared_dir, service_dir):
        if folder not in installed:
            problems.append(f"{where} does not install {folder} with the lock as constraints")
    return problems


# ----------------------------------------------------------------------------------------------
# tests


SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))


@pytest.fixture(scope="module")
def sources() -> Sources:
    return read_sources()


SOURCE_CHECKS = [check_declared_are_locked, check_lock_is_exact, check_every_package_is_an_input]


@pytest.mark.parametrize("check", SOURCE_CHECKS, ids=[c.__name__ for c in SOURCE_CHECKS])
def test_lock_is_consistent(sources, check):
    problems = check(sources)
    assert not problems, f"{check.__doc__.strip()}\n  - " + "\n  - ".join(problems)


def test_bench_only_dependencies_stay_in_bench(sources):
    problems = check_bench_only(sources, python_files_outside_bench())
    assert not problems, "\n".join(problems)


def test_makefile_installs_from_the_lock(sources):
    problems = check_makefile((ROOT / "Makefile").read_text(), sources)
    assert not problems, f"{check_makefile.__doc__.strip()}\n  - " + "\n  - ".join(problems)


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_installs_from_the_lock(service):
    problems = check_dockerfile(service, (ROOT / "services" / service / "Dockerfile").read_text())
    assert not problems, f"{check_dockerfile.__doc__.strip()}\n  - " + "\n  - ".join(problems)


def test_make_test_lints_before_the_tests():
    """make test runs `ruff check .` on the whole repository before pytest (fail fast)."""
    commands, error = makefile_commands((ROOT / "Makefile").read_text(), "test")
    assert not error, f"make -n test fails: {error}"
    words = [shlex.split(command) for command in commands]
    lint = [
        i
        for i, w in enumerate(words)
        if w[:1] and w[0].endswith("/ruff") and w[1:] == ["check", "."]
    ]
    tests = [i for i, w in enumerate(words) if w[1:3] == ["-m", "pytest"]]
    assert lint, f"make test does not run ruff check .: {commands}"
    assert tests, f"make test does not run pytest: {commands}"
    assert lint[0] < tests[0], f"make test runs pytest before ruff check .: {commands}"


def test_dockerignore_keeps_the_lock():
    assert check_dockerignore((ROOT / ".dockerignore").read_text()) == []


def test_ci_installs_through_make():
    """CI runs make test (which installs from the lock) and installs nothing by itself."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\s*make test\b", ci, flags=re.M), ".ci/run does not run make test"
    own = [i.command for i in map(as_install, simple_commands(ci)) if i is not None]
    assert not own, f".ci/run installs by itself, not from the lock: {own}"


# --- each check reports the breakage it is for


def _replace(field: str, old: str, new: str, path: str | None = None):
    def mutate(s: Sources) -> Sources:
        if path is not None:
            text = s.pyprojects[path]
            assert old in text, old
            return dataclasses.replace(
                s, pyprojects={**s.pyprojects, path: text.replace(old, new, 1)}
            )
        text = getattr(s, field)
        assert re.search(old, text, flags=re.M), old
        return dataclasses.replace(s, **{field: re.sub(old, new, text, count=1, flags=re.M)})

    return mutate


def _drop_pin(name: str):
    return _replace("lock", rf"^{name}==[^\n]*(\n    [^\n]*)*\n", "")


SOURCE_BREAKAGES = [
    ("runtime dependency not locked", check_declared_are_locked, _drop_pin("tenacity"), "tenacity"),
    (
        "dev tool not locked",
        check_declared_are_locked,
        _drop_pin("ruff"),
        "requirements.in [dev]: ruff",
    ),
    (
        "new dependency not locked",
        check_declared_are_locked,
        _replace(
            "",
            '"redis>=5",',
            '"redis>=5",\n  "left-pad>=1",',
            path="services/orders/pyproject.toml",
        ),
        "left-pad",
    ),
    (
        "locked version excluded",
        check_declared_are_locked,
        _replace("", '"redis>=5"', '"redis>=99"', path="services/orders/pyproject.toml"),
        "redis>=99",
    ),
    (
        "extra's dependency not locked",
        check_declared_are_locked,
        _drop_pin("psycopg-binary"),
        "psycopg-binary",
    ),
    ("loose pin", check_lock_is_exact, _replace("lock", r"^ruff==", "ruff>="), "not an exact pin"),
    (
        "no hashes",
        check_lock_is_exact,
        _replace("lock", r"^(pika==\S+) \\\n(    --hash=\S+( \\)?\n)+", r"\1\n"),
        "pika==1",
    ),
    (
        "local package pinned",
        check_lock_is_exact,
        _replace("lock", r"^", "-e ./shared\n"),
        "option line",
    ),
    (
        "package not an input",
        check_every_package_is_an_input,
        _replace("lock_input", r"^-e \./services/gdpr\n", ""),
        "services/gdpr",
    ),
    (
        "optional group not an input",
        check_every_package_is_an_input,
        _replace("lock_input", r"^-e \./services/orders\[test\]", "-e ./services/orders"),
        "[test]",
    ),
]


@pytest.mark.parametrize(
    "check,mutate,expected", [b[1:] for b in SOURCE_BREAKAGES], ids=[b[0] for b in SOURCE_BREAKAGES]
)
def test_source_check_reports_a_breakage(sources, check, mutate, expected):
    assert not [p for p in check(sources) if expected in p]
    reported = [p for p in check(mutate(sources)) if expected in p]
    assert reported, f"{check.__name__} did not report {expected!r}: {check(mutate(sources))}"


def test_bench_check_reports_a_service_import(sources):
    bench = [
        line for section, line in input_sections(sources.lock_input) if section == BENCH_SECTION
    ]
    assert bench, f"{LOCK_INPUT} has no [{BENCH_SECTION}] section"
    module = canonicalize_name(Requirement(bench[0]).name).replace("-", "_")
    problems = check_bench_only(sources, {"services/orders/src/x.py": f"import {module}\n"})
    assert any("services/orders/src/x.py" in p for p in problems), problems
    declared = _replace(
        "", '"redis>=5",', f'"redis>=5",\n  "{module}",', path="services/orders/pyproject.toml"
    )(sources)
    assert any("benchmark-only" in p for p in check_bench_only(declared, {})), check_bench_only(
        declared, {}
    )


MAKEFILE_BREAKAGES = [
    (
        "the old install",
        lambda t: re.sub(
            r"\t\$\(BIN\)/python -m pip install --quiet --require-hashes -r "
            r"\$\(LOCK\)\n(\t[^\n]*\n)",
            "\t$(BIN)/python -m pip install -e shared -r requirements-dev.txt\n",
            t,
        ),
        "requirements-dev.txt",
    ),
    ("resolves again", lambda t: t.replace("--no-deps ", ""), "without --no-deps"),
    (
        "lock not a prerequisite",
        lambda t: t.replace("$(INSTALLED): $(LOCK) ", "$(INSTALLED): "),
        f"when {LOCK} changes",
    ),
    (
        "a pyproject not a prerequisite",
        lambda t: t.replace(
            "$(wildcard services/*/pyproject.toml)", "services/orders/pyproject.toml"
        ),
        "services/gdpr/pyproject.toml changes",
    ),
    ("lock without hashes", lambda t: t.replace("--generate-hashes ", ""), "--generate-hashes"),
    (
        "local package locked",
        lambda t: t.replace("--no-emit-package coc-shared ", ""),
        "coc-shared",
    ),
]


@pytest.mark.parametrize(
    "mutate,expected", [b[1:] for b in MAKEFILE_BREAKAGES], ids=[b[0] for b in MAKEFILE_BREAKAGES]
)
def test_makefile_check_reports_a_breakage(sources, mutate, expected):
    makefile = (ROOT / "Makefile").read_text()
    broken = mutate(makefile)
    assert broken != makefile, "the mutation no longer applies to the Makefile"
    problems = check_makefile(broken, sources)
    assert any(expected in p for p in problems), problems


GOOD_DOCKERFILE = """FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock /app/requirements.lock
COPY shared /app/shared
COPY services/orders /app/services/orders
RUN pip install -c requirements.lock /app/shared /app/services/orders
"""


@pytest.mark.parametrize(
    "text,expected",
    [
        (GOOD_DOCKERFILE, None),
        (GOOD_DOCKERFILE.replace("-c requirements.lock ", ""), "without the lock as constraints"),
        (
            GOOD_DOCKERFILE.replace("COPY requirements.lock /app/requirements.lock\n", ""),
            "does not COPY",
        ),
        (
            GOOD_DOCKERFILE.replace("-c requirements.lock", "-r requirements.lock"),
            "installs the whole lock",
        ),
        (
            GOOD_DOCKERFILE.replace(
                "/app/services/orders\n", "/app/services/orders && pip install pytest\n"
            ),
            "`pip install pytest`",
        ),
        (
            GOOD_DOCKERFILE.replace(" /app/shared /app/services/orders", " /app/shared")
            + "RUN pip install /app/services/orders\n",
            "does not install /app/services/orders",
        ),
        (
            GOOD_DOCKERFILE.replace(
                "COPY requirements.lock /app/requirements.lock", "COPY requirements.lock ./"
            ),
            None,
        ),
    ],
    ids=[
        "good",
        "unconstrained",
        "no-copy",
        "whole-lock",
        "extra-install",
        "service-unconstrained",
        "copy-to-dot",
    ],
)
def test_dockerfile_check(text, expected):
    problems = check_dockerfile("orders", text)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "text,excluded",
    [
        (".venv\n.git\n", False),
        ("*.lock\n", True),
        ("**/*.lock\n!requirements.lock\n", False),
        ("requirements*\n", True),
    ],
)
def test_dockerignore_check(text, excluded):
    assert bool(check_dockerignore(text)) is excluded
