"""docker-compose.yml (the production shape) against the code, without Docker.

Every check is a function of the loaded compose document that returns the problems it finds, as
sentences naming the container and what is wrong. ``test_compose_is_consistent`` runs each check on
the real file; ``test_check_reports_a_broken_compose`` breaks a copy of the document in one way per
case and expects the check to say so.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import json
import re
import shlex
import tomllib
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import yaml

import coc_shared.service
from coc_shared.config import ENV_VARS, SERVICE_NAMES, port_variable, schema_name
from coc_shared.http import create_base_app, health_blueprint
from coc_shared.tables import OPS_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY_README = ROOT / "deploy" / "README.md"

INFRASTRUCTURE = ("rabbitmq", "postgres", "minio", "minio-init", "mailpit")
ONE_SHOTS = ("minio-init",) + tuple(f"{s}-migrate" for s in SERVICE_NAMES)
# Variables the third-party images read; only infrastructure containers may set them.
IMAGE_ENV_PREFIXES = ("POSTGRES_", "RABBITMQ_", "MINIO_", "MP_")
BUCKET = "coc-documents"
API_HEALTH_PATH = "/healthz"


def package(service: str) -> str:
    return "coc_" + service.replace("-", "_")


def default_port(service: str) -> int:
    return int(ENV_VARS[port_variable(service)].default)


def installed(service: str) -> bool:
    try:
        return importlib.util.find_spec(package(service)) is not None
    except (ImportError, ValueError):
        return False


# Services declare their own variables (declare_env) when imported; those are declared too.
for _service in SERVICE_NAMES:
    if installed(_service):
        importlib.import_module(package(_service) + ".service")

WORKER_COMMANDS = tuple(
    re.search(r"choices=\[([^\]]*)\]", inspect.getsource(coc_shared.service.main))
    .group(1)
    .replace('"', "")
    .replace(" ", "")
    .split(",")
)


# ----------------------------------------------------------------------------------------------
# reading the compose document, the Dockerfiles and the pyproject files


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services_of(compose: dict) -> dict:
    return compose.get("services") or {}


def as_args(value) -> list[str]:
    """A compose command/entrypoint/healthcheck test (list or shell string) as a list of words."""
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def environment_of(container: dict) -> dict[str, str | None]:
    env = container.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {p[0]: (p[1] if len(p) > 1 else None) for p in pairs}
    return {k: (None if v is None else str(v)) for k, v in env.items()}


_VARIABLE = re.compile(
    r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


def interpolated_names(text: str) -> list[str]:
    """Host variables compose substitutes in ``text`` (``$$`` is a literal dollar, not a
    variable)."""
    text = text.replace("$$", "")
    return [m.group(1) or m.group(4) for m in _VARIABLE.finditer(text)]


def interpolate(text: str) -> str:
    """``text`` as compose would substitute it with an empty host environment (required ones as
    <NAME>)."""
    parts = text.split("$$")

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1) or m.group(4), m.group(2), m.group(3)
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            return f"<{name}>"
        return ""

    return "$".join(_VARIABLE.sub(one, p) for p in parts)


def strings_in(node, path="") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [
            item
            for k, v in node.items()
            for item in strings_in(v, f"{path}.{k}" if path else str(k))
        ]
    if isinstance(node, list):
        return [item for i, v in enumerate(node) for item in strings_in(v, f"{path}[{i}]")]
    return [(path, node)] if isinstance(node, str) else []


def port_mappings(container: dict) -> list[tuple[str | None, int | None, int]]:
    """(host ip, published, target) of each published port, short or long syntax."""
    result = []
    for entry in container.get("ports") or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            result.append(
                (
                    entry.get("host_ip"),
                    int(published) if published is not None else None,
                    int(entry["target"]),
                )
            )
            continue
        spec = str(entry).split("/", 1)[0]
        fields = spec.rsplit(":", 2)
        if len(fields) == 1:
            result.append((None, None, int(fields[0])))
        elif len(fields) == 2:
            result.append((None, int(fields[0]), int(fields[1])))
        else:
            result.append((fields[0], int(fields[1]), int(fields[2])))
    return result


def healthcheck_urls(container: dict) -> list[tuple[int, str]]:
    test = " ".join(as_args((container.get("healthcheck") or {}).get("test")))
    return [
        (int(port), path)
        for port, path in re.findall(r"https?://[^/:'\"\s]+:(\d+)(/[^'\"\s)]*)", test)
    ]


def console_scripts() -> dict[str, Path]:
    """Every console script of the repository -> the pyproject.toml that declares it."""
    scripts = {}
    for pyproject in [
        ROOT / "shared" / "pyproject.toml",
        *sorted((ROOT / "services").glob("*/pyproject.toml")),
    ]:
        data = tomllib.loads(pyproject.read_text())
        for name in data.get("project", {}).get("scripts", {}):
            scripts[name] = pyproject
    return scripts


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    instructions, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current:
            keyword, _, rest = current.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def dockerfile_variables(instructions) -> dict[str, str]:
    variables = {}
    for keyword, rest in instructions:
        if keyword in ("ARG", "ENV"):
            for match in re.finditer(r"([A-Za-z_][A-Za-z0-9_]*)(?:=(\"[^\"]*\"|\S*))?", rest):
                if match.group(2) is not None:
                    variables[match.group(1)] = match.group(2).strip('"')
    return variables


def dockerfile_command(instructions, keyword: str) -> list[str] | None:
    value = None
    for kw, rest in instructions:
        if kw == keyword:
            try:
                value = [str(v) for v in json.loads(rest)]
            except json.JSONDecodeError:
                value = ["/bin/sh", "-c", rest]
    return value


def expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(
        r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)",
        lambda m: variables.get(m.group(1) or m.group(3), m.group(2) or ""),
        text,
    )


def gunicorn_app_and_bind(args: list[str]) -> tuple[str | None, str | None]:
    """(app path, bind address) of a gunicorn command line, None where absent."""
    if len(args) >= 3 and args[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
        args = shlex.split(args[2])
    if not any(Path(a).name == "gunicorn" for a in args) and "gunicorn" not in args[:3]:
        return None, None
    start = next(i for i, a in enumerate(args) if Path(a).name == "gunicorn" or a == "gunicorn")
    app, bind, words = None, None, args[start + 1 :]
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("-b", "--bind") and i + 1 < len(words):
            bind = words[i + 1]
            i += 2
            continue
        if word.startswith("--bind="):
            bind = word.split("=", 1)[1]
        elif (
            word.startswith("-")
            and "=" not in word
            and i + 1 < len(words)
            and not words[i + 1].startswith("-")
            and ":" not in words[i + 1]
        ):
            i += 2  # an option with its value (--workers 2)
            continue
        elif not word.startswith("-"):
            app = word
        i += 1
    return app, bind


def dockerfile_problems(service: str, text: str) -> list[str]:
    """The service's Dockerfile: EXPOSEs the service's port, and its default command is gunicorn
    serving ``coc_PKG.entrypoints.api:create_app()`` on 0.0.0.0:<port>."""
    problems = []
    port = default_port(service)
    where = f"services/{service}/Dockerfile"
    instructions = dockerfile_instructions(text)
    variables = dockerfile_variables(instructions)
    exposed = set()
    for keyword, rest in instructions:
        if keyword == "EXPOSE":
            for word in expand(rest, variables).split():
                if word.split("/")[0].isdigit():
                    exposed.add(int(word.split("/")[0]))
    if port not in exposed:
        problems.append(
            f"{where} does not EXPOSE {port} ({port_variable(service)}'s default; it exposes "
            f"{sorted(exposed) or 'nothing'})"
        )
    entrypoint = dockerfile_command(instructions, "ENTRYPOINT")
    if entrypoint and Path(entrypoint[0]).name not in ("tini", "dumb-init", "docker-init"):
        problems.append(
            f"{where} has ENTRYPOINT {entrypoint}: compose's commands (coc-{service} "
            "migrate|worker) would become its arguments"
        )
    cmd = dockerfile_command(instructions, "CMD")
    if cmd is None:
        problems.append(f"{where} has no CMD (the API container runs the image's default command)")
        return problems
    app, bind = gunicorn_app_and_bind([expand(a, variables) for a in cmd])
    if app is None:
        problems.append(f"{where}: the default command {cmd} is not gunicorn serving the API")
        return problems
    problems += app_path_problems(service, app, f"{where} CMD")
    expected_bind = f"0.0.0.0:{port}"
    if bind != expected_bind:
        problems.append(
            f"{where}: gunicorn binds {bind or 'its default 127.0.0.1:8000'}, expected "
            f"{expected_bind}"
        )
    return problems


def app_path_problems(service: str, app: str, where: str) -> list[str]:
    """``app`` must be ``coc_PKG.entrypoints.api:create_app()`` and that factory must exist."""
    expected = f"{package(service)}.entrypoints.api:create_app()"
    if app != expected:
        return [f"{where}: gunicorn app {app!r}, expected {expected!r}"]
    module_name = expected.split(":")[0]
    if installed(service):
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            return [f"{where}: gunicorn app module {module_name} does not import: {exc}"]
        if not callable(getattr(module, "create_app", None)):
            return [f"{where}: {module_name} has no create_app() factory"]
        return []
    path = ROOT / "services" / service / "src" / Path(*module_name.split(".")).with_suffix(".py")
    if not path.is_file():
        return [
            f"{where}: gunicorn app module {module_name} does not exist ({path.relative_to(ROOT)} "
            f"is missing; package {package(service)} is not installed either)"
        ]
    if not re.search(r"^def create_app\(", path.read_text(), flags=re.M):
        return [f"{where}: {path.relative_to(ROOT)} defines no create_app()"]
    return []


# ----------------------------------------------------------------------------------------------
# the checks: compose document -> problems


def check_containers(compose: dict) -> list[str]:
    """Infrastructure, and a migrate, an api and a worker container for each of the five
    services."""
    names = set(services_of(compose))
    expected = list(INFRASTRUCTURE) + [
        f"{s}-{role}" for s in SERVICE_NAMES for role in ("migrate", "api", "worker")
    ]
    problems = [f"container {name} is missing" for name in expected if name not in names]
    problems += [
        f"container {name} is not one this check knows (add it to the test if it is intended)"
        for name in sorted(names - set(expected))
    ]
    return problems


def check_commands(compose: dict) -> list[str]:
    """``coc-NAME migrate`` / ``coc-NAME worker``; every coc-* program is a declared console
    script."""
    scripts = console_scripts()
    services = services_of(compose)
    problems = _migrate_and_worker_commands(services)
    for name, container in services.items():
        if "build" not in container:
            continue
        for key in ("entrypoint", "command"):
            problems += _coc_programs_run(name, key, as_args(container.get(key)), scripts)
    return problems


def _migrate_and_worker_commands(services: dict) -> list[str]:
    problems = []
    for service in SERVICE_NAMES:
        for role in ("migrate", "worker"):
            container = services.get(f"{service}-{role}")
            if container is not None and as_args(container.get("command")) != [
                f"coc-{service}",
                role,
            ]:
                problems.append(
                    f"{service}-{role}: command is {as_args(container.get('command'))}, "
                    f"expected ['coc-{service}', '{role}']"
                )
    return problems


def _coc_programs_run(name: str, key: str, args: list[str], scripts: dict) -> list[str]:
    """Every coc-* program in the ``key`` (entrypoint or command) of container ``name``: a
    console script declared by shared or by the container's service, with a worker command."""
    problems = []
    for i, word in enumerate(args):
        if not re.fullmatch(r"coc-[a-z][a-z-]*", word):
            continue
        declared_in = scripts.get(word)
        if declared_in is None:
            problems.append(
                f"{name}: {key} runs {word!r}, which no pyproject.toml declares as a "
                f"console script (declared: {', '.join(sorted(scripts))})"
            )
            continue
        owner = declared_in.parent.name
        if owner != "shared" and not name.startswith(owner + "-"):
            problems.append(
                f"{name}: runs {word!r}, a console script of services/{owner}, "
                "not of this container's service"
            )
        if owner != "shared":
            sub = args[i + 1] if i + 1 < len(args) else None
            if sub not in WORKER_COMMANDS:
                problems.append(
                    f"{name}: '{word} {sub}' is not a command of the services' command "
                    f"line (one of {', '.join(WORKER_COMMANDS)})"
                )
    return problems


def check_api_ports(compose: dict) -> list[str]:
    """Each API publishes exactly its code default port on the same internal port (and its
    healthcheck probes that port); no other service container publishes ports; no host port
    twice."""
    services = services_of(compose)
    return _api_ports(services) + _port_variables_at_default(services) + _host_ports_once(services)


def _api_ports(services: dict) -> list[str]:
    """Each API's published and internal port is its code default, and its healthcheck probes
    it; the migrate and worker containers publish nothing."""
    problems = []
    for service in SERVICE_NAMES:
        name, port = f"{service}-api", default_port(service)
        container = services.get(name)
        if container is None:
            continue
        mappings = port_mappings(container)
        if [(p, t) for _ip, p, t in mappings] != [(port, port)]:
            problems.append(
                f"{name}: publishes {[(p, t) for _ip, p, t in mappings]} (published, internal), "
                f"expected [({port}, {port})], {port_variable(service)}'s default"
            )
        for probe_port, _path in healthcheck_urls(container):
            if probe_port != port:
                problems.append(
                    f"{name}: healthcheck probes port {probe_port}, the API listens on {port}"
                )
        for role in ("migrate", "worker"):
            other = services.get(f"{service}-{role}") or {}
            if other.get("ports"):
                problems.append(
                    f"{service}-{role}: publishes ports {other['ports']}, but serves no HTTP"
                )
    return problems


def _port_variables_at_default(services: dict) -> list[str]:
    problems = []
    for name, container in services.items():
        for variable, value in environment_of(container).items():
            if (
                variable.endswith("_PORT")
                and variable in ENV_VARS
                and value != ENV_VARS[variable].default
            ):
                problems.append(
                    f"{name}: sets {variable}={value}, but the images serve on its default "
                    f"{ENV_VARS[variable].default}"
                )
    return problems


def _host_ports_once(services: dict) -> list[str]:
    problems = []
    published_by: list[tuple[str | None, int, str]] = []
    for name, container in services.items():
        for ip, published, _target in port_mappings(container):
            if published is None:
                continue
            for other_ip, other_port, other in published_by:
                if other_port == published and (
                    ip == other_ip or {ip, other_ip} & {None, "0.0.0.0"}
                ):
                    problems.append(
                        f"{name}: host port {published} is already published by {other}"
                    )
            published_by.append((ip, published, name))
    return problems


def check_environment_names(compose: dict) -> list[str]:
    """Service containers set only variables of ENV_VARS; infrastructure containers only their
    image's (POSTGRES_*, RABBITMQ_*, MINIO_*, MP_*); every ${HOST_VARIABLE} is one of those too."""
    problems = []
    for name, container in services_of(compose).items():
        problems += _variables_set(name, container)
    for key in ("x-service-env",):
        for variable in compose.get(key) or {}:
            if variable not in ENV_VARS:
                problems.append(
                    f"{key}: names {variable}, which is not declared in coc_shared.config.ENV_VARS"
                )
    for where, text in strings_in(compose):
        for variable in interpolated_names(text):
            if variable not in ENV_VARS and not variable.startswith(IMAGE_ENV_PREFIXES):
                problems.append(
                    f"{where}: substitutes host variable ${{{variable}}}, which is neither in "
                    f"ENV_VARS nor an image's variable ({', '.join(IMAGE_ENV_PREFIXES)}*)"
                )
    return problems


def _variables_set(name: str, container: dict) -> list[str]:
    """The variables container ``name`` sets: the services' (ENV_VARS) in a service container,
    its image's in an infrastructure container."""
    problems = []
    if "env_file" in container:
        problems.append(f"{name}: env_file hides variable names from this check; use environment")
    infrastructure = "build" not in container
    for variable in environment_of(container):
        if variable in ENV_VARS:
            if infrastructure:
                problems.append(
                    f"{name}: sets {variable}, a variable of the services, in a third-party image"
                )
            continue
        if infrastructure and variable.startswith(IMAGE_ENV_PREFIXES):
            continue
        problems.append(
            f"{name}: sets {variable}, which is not declared in coc_shared.config.ENV_VARS"
            + (
                ""
                if not infrastructure
                else f" nor one of the image's ({', '.join(IMAGE_ENV_PREFIXES)}*)"
            )
        )
    return problems


def check_environment_values(compose: dict) -> list[str]:
    """All service containers share one environment; its URLs name the postgres and rabbitmq
    containers with their users, passwords and database; the secrets come from the host."""
    problems = []
    services = services_of(compose)
    containers = [
        f"{s}-{r}"
        for s in SERVICE_NAMES
        for r in ("migrate", "api", "worker")
        if f"{s}-{r}" in services
    ]
    if not containers:
        return ["no service containers"]
    reference_name = containers[0]
    reference = environment_of(services[reference_name])
    problems += _shared_environment(services, containers, reference_name, reference)
    postgres = environment_of(services.get("postgres") or {})
    if "DATABASE_URL" in reference:
        problems += _database_url(reference["DATABASE_URL"], postgres)
    rabbitmq = environment_of(services.get("rabbitmq") or {})
    if "RABBITMQ_URL" in reference:
        problems += _rabbitmq_url(reference["RABBITMQ_URL"], rabbitmq)
    return problems


def _shared_environment(
    services: dict, containers: list[str], reference_name: str, reference: dict
) -> list[str]:
    """Every service container has the environment of ``reference_name`` (``reference``), with
    the required variables, the secrets from the host and a reachable SERVICE_HOST."""
    problems = []
    for name in containers[1:]:
        env = environment_of(services[name])
        if env != reference:
            differing = sorted(
                k for k in set(env) | set(reference) if env.get(k) != reference.get(k)
            )
            problems.append(
                f"{name}: environment differs from {reference_name}'s in {differing} "
                "(use the x-service-env anchor)"
            )
    for required in ("DATABASE_URL", "RABBITMQ_URL", "STAFF_TOKEN_SECRET", "SERVICE_HOST"):
        if required not in reference:
            problems.append(f"{reference_name}: {required} is not set")
    for secret in ("STAFF_TOKEN_SECRET", "CUSTOMER_TOKEN_SECRET"):
        value = reference.get(secret)
        if value is not None and not re.fullmatch(rf"\$\{{{secret}:\?[^}}]*\}}", value):
            problems.append(
                f"{reference_name}: {secret} must come from the host as ${{{secret}:?...}}, "
                f"not {value!r}"
            )
    if reference.get("SERVICE_HOST") not in (None, "0.0.0.0"):
        problems.append(
            f"{reference_name}: SERVICE_HOST={reference['SERVICE_HOST']} is unreachable from "
            "other containers; use 0.0.0.0"
        )
    return problems


def _database_url(database_url: str, postgres: dict) -> list[str]:
    """DATABASE_URL names the postgres container (``postgres``: its environment) with its user,
    password and database."""
    problems = []
    url = urlsplit(interpolate(database_url))
    if url.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        problems.append(f"DATABASE_URL is {url.scheme}://, not PostgreSQL")
    if url.hostname != "postgres":
        problems.append(f"DATABASE_URL points to {url.hostname!r}, not the postgres container")
    for part, variable, default in (
        (url.username, "POSTGRES_USER", "postgres"),
        (url.password, "POSTGRES_PASSWORD", None),
        (url.path.lstrip("/"), "POSTGRES_DB", None),
    ):
        value = interpolate(postgres.get(variable) or "") or default
        if variable == "POSTGRES_DB" and not postgres.get(variable):
            value = interpolate(postgres.get("POSTGRES_USER") or "") or "postgres"
        if part != value:
            problems.append(
                f"DATABASE_URL has {variable.split('_')[1].lower()} {part!r}, the postgres "
                f"container's {variable} is {value!r}"
            )
    return problems


def _rabbitmq_url(rabbitmq_url: str, rabbitmq: dict) -> list[str]:
    """RABBITMQ_URL names the rabbitmq container (``rabbitmq``: its environment) with its user
    and password, not guest."""
    problems = []
    url = urlsplit(interpolate(rabbitmq_url))
    if url.scheme not in ("amqp", "amqps"):
        problems.append(f"RABBITMQ_URL is {url.scheme}://, not AMQP")
    if url.hostname != "rabbitmq":
        problems.append(f"RABBITMQ_URL points to {url.hostname!r}, not the rabbitmq container")
    for part, variable in (
        (url.username, "RABBITMQ_DEFAULT_USER"),
        (url.password, "RABBITMQ_DEFAULT_PASS"),
    ):
        value = interpolate(rabbitmq.get(variable) or "") or "guest"
        if part != value:
            problems.append(
                f"RABBITMQ_URL has {variable.rsplit('_', 1)[1].lower()} {part!r}, the rabbitmq "
                f"container's {variable} is {value!r}"
            )
    if url.username == "guest":
        problems.append(
            "RABBITMQ_URL uses guest, which RabbitMQ accepts from localhost only; "
            "set RABBITMQ_DEFAULT_USER/PASS"
        )
    return problems


def check_depends_on(compose: dict) -> list[str]:
    """migrate waits for healthy postgres and rabbitmq; api and worker for their migrate to succeed;
    the bucket one-shot for healthy minio; every dependency exists and can become healthy."""
    problems = []
    services = services_of(compose)

    def conditions(name: str) -> dict[str, str]:
        deps = (services.get(name) or {}).get("depends_on") or {}
        if isinstance(deps, list):
            return {d: "service_started" for d in deps}
        return {d: (spec or {}).get("condition", "service_started") for d, spec in deps.items()}

    def expect(name: str, dependency: str, condition: str) -> None:
        if name not in services:
            return
        actual = conditions(name).get(dependency)
        if actual != condition:
            problems.append(
                f"{name}: depends_on {dependency} is {actual or 'missing'}, expected condition "
                f"{condition}"
            )

    for service in SERVICE_NAMES:
        expect(f"{service}-migrate", "postgres", "service_healthy")
        expect(f"{service}-migrate", "rabbitmq", "service_healthy")
        expect(f"{service}-api", f"{service}-migrate", "service_completed_successfully")
        expect(f"{service}-worker", f"{service}-migrate", "service_completed_successfully")
    expect("minio-init", "minio", "service_healthy")
    for name in services:
        for dependency, condition in conditions(name).items():
            if dependency not in services:
                problems.append(f"{name}: depends on {dependency}, which is not a container")
            elif condition == "service_healthy" and not has_healthcheck(services[dependency]):
                problems.append(
                    f"{name}: waits for {dependency} to be healthy, which has no healthcheck"
                )
    return problems


def has_healthcheck(container: dict) -> bool:
    check = container.get("healthcheck") or {}
    test = as_args(check.get("test"))
    return bool(test) and not check.get("disable") and test[0] != "NONE"


def check_healthchecks(compose: dict) -> list[str]:
    """Every long-running container has a healthcheck; each API's probes GET /healthz; one-shots
    do not restart."""
    problems = []
    services = services_of(compose)
    for name, container in services.items():
        if name in ONE_SHOTS:
            if str(container.get("restart", "no")) not in ("no", "on-failure"):
                problems.append(
                    f"{name}: a one-shot with restart: {container['restart']} would run forever"
                )
            continue
        if not has_healthcheck(container):
            problems.append(f"{name}: long-running container without a healthcheck")
    for service in SERVICE_NAMES:
        container = services.get(f"{service}-api")
        if container is not None and has_healthcheck(container):
            paths = [path for _port, path in healthcheck_urls(container)]
            if paths != [API_HEALTH_PATH]:
                problems.append(
                    f"{service}-api: healthcheck probes {paths or 'no http:// URL'}, expected "
                    f"http://127.0.0.1:{default_port(service)}{API_HEALTH_PATH}"
                )
    return problems


def served_paths() -> set[str]:
    """GET paths that answer 200 on the app every service builds on (create_base_app), without a
    database."""
    runtime = SimpleNamespace(settings=SimpleNamespace(service="consistency-check"))
    app = create_base_app(runtime)
    client = app.test_client()
    health_rules = {
        rule.rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("health.")
    }
    return {path for path in health_rules if client.get(path).status_code == 200}


def check_healthz_is_served(compose: dict) -> list[str]:
    """The path the API healthchecks probe is served by coc_shared.http's health blueprint."""
    problems = []
    served = served_paths()
    for name, container in services_of(compose).items():
        if name.endswith("-api"):
            for _port, path in healthcheck_urls(container):
                if path not in served:
                    problems.append(
                        f"{name}: healthcheck probes {path}, which the services do not serve "
                        f"(health_blueprint serves {sorted(served)})"
                    )
    return problems


def check_builds(compose: dict) -> list[str]:
    """Each service container builds from the repository root with services/NAME/Dockerfile (which
    exists, EXPOSEs the port, and runs gunicorn on the API factory); its three containers share one
    image."""
    problems = []
    services = services_of(compose)
    for service in SERVICE_NAMES:
        images = set()
        for role in ("migrate", "api", "worker"):
            name = f"{service}-{role}"
            container = services.get(name)
            if container is None:
                continue
            build = container.get("build")
            if build is None:
                problems.append(f"{name}: has no build section")
                continue
            if isinstance(build, str):
                build = {"context": build}
            context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
            if context != ROOT:
                problems.append(
                    f"{name}: build context is {build.get('context')!r}, expected '.' (the "
                    "repository root)"
                )
            dockerfile = build.get("dockerfile", "Dockerfile")
            if dockerfile != f"services/{service}/Dockerfile":
                problems.append(
                    f"{name}: dockerfile is {dockerfile!r}, expected "
                    f"'services/{service}/Dockerfile'"
                )
            if not (context / dockerfile).is_file():
                problems.append(f"{name}: {dockerfile} does not exist")
            images.add(container.get("image"))
        if len(images) > 1:
            problems.append(
                f"{service}: its containers name different images {sorted(map(str, images))}"
            )
        dockerfile = ROOT / "services" / service / "Dockerfile"
        if dockerfile.is_file():
            problems += dockerfile_problems(service, dockerfile.read_text())
        elif f"{service}-api" in services:
            problems.append(
                f"services/{service}/Dockerfile does not exist (service package not written yet?)"
            )
    return problems


def check_api_app(compose: dict) -> list[str]:
    """The API container runs gunicorn on ``coc_PKG.entrypoints.api:create_app()`` (its own command,
    or the Dockerfile's default one), and that factory exists."""
    problems = []
    services = services_of(compose)
    for service in SERVICE_NAMES:
        name = f"{service}-api"
        container = services.get(name)
        if container is None:
            continue
        command = container.get("command")
        if command is not None:
            app, bind = gunicorn_app_and_bind(as_args(command))
            if app is None:
                problems.append(f"{name}: command {as_args(command)} does not run gunicorn")
                continue
            problems += app_path_problems(service, app, name)
            if bind != f"0.0.0.0:{default_port(service)}":
                problems.append(
                    f"{name}: gunicorn binds {bind}, expected 0.0.0.0:{default_port(service)}"
                )
            continue
        dockerfile = ROOT / "services" / service / "Dockerfile"
        if not dockerfile.is_file():
            problems.append(
                f"{name}: runs the default command of services/{service}/Dockerfile, which does "
                "not exist"
            )
            continue
        cmd = dockerfile_command(dockerfile_instructions(dockerfile.read_text()), "CMD") or []
        app, _bind = gunicorn_app_and_bind(cmd)
        if app is None:
            problems.append(
                f"{name}: the default command of services/{service}/Dockerfile is not gunicorn"
            )
        else:
            problems += app_path_problems(service, app, f"{name} (Dockerfile CMD)")
    return problems


def check_postgres_init(compose: dict) -> list[str]:
    """The init scripts mounted into postgres create exactly the services' schemas and ops."""
    problems = []
    postgres = services_of(compose).get("postgres") or {}
    mounts = [
        v
        for v in postgres.get("volumes") or []
        if isinstance(v, str) and ":/docker-entrypoint-initdb.d" in v
    ]
    if not mounts:
        return ["postgres: no init scripts mounted at /docker-entrypoint-initdb.d"]
    folder = (COMPOSE_FILE.parent / mounts[0].split(":", 1)[0]).resolve()
    scripts = sorted(folder.glob("*.sql")) if folder.is_dir() else []
    if not scripts:
        return [f"postgres: init script folder {mounts[0].split(':', 1)[0]} has no .sql file"]
    created = set()
    for script in scripts:
        sql = re.sub(r"--[^\n]*|/\*.*?\*/", "", script.read_text(), flags=re.S)
        created |= set(
            re.findall(r"CREATE\s+SCHEMA\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)\"?", sql, flags=re.I)
        )
    expected = {schema_name(s) for s in SERVICE_NAMES} | {OPS_SCHEMA}
    if created != expected:
        problems.append(
            f"postgres init scripts create schemas {sorted(created)}, the services own "
            f"{sorted(expected)}"
        )
    return problems


def check_bucket(compose: dict) -> list[str]:
    """The one-shot minio-init creates the documents bucket."""
    container = services_of(compose).get("minio-init") or {}
    words = " ".join(as_args(container.get("entrypoint")) + as_args(container.get("command")))
    if not re.search(rf"mc mb (--ignore-existing |-p )*\S+/{BUCKET}(\s|$)", words):
        return [
            f"minio-init: does not create the bucket {BUCKET} (mc mb --ignore-existing "
            f"local/{BUCKET})"
        ]
    return []


CHECKS = [
    check_containers,
    check_commands,
    check_api_ports,
    check_environment_names,
    check_environment_values,
    check_depends_on,
    check_healthchecks,
    check_healthz_is_served,
    check_builds,
    check_api_app,
    check_postgres_init,
    check_bucket,
]


# ----------------------------------------------------------------------------------------------
# tests


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_compose_is_consistent(compose, check):
    problems = check(copy.deepcopy(compose))
    assert not problems, f"{check.__name__}: {check.__doc__.strip()}\n  - " + "\n  - ".join(
        problems
    )


def _set(path: str, value):
    """A mutation setting services.<path> (dotted; [i] for list items)."""

    def mutate(doc):
        node = doc["services"]
        keys = re.findall(r"[^.\[\]]+|\[\d+\]", path)
        for key in keys[:-1]:
            node = node[int(key[1:-1])] if key.startswith("[") else node.setdefault(key, {})
        last = keys[-1]
        if value is _DELETE:
            del node[last]
        elif last.startswith("["):
            node[int(last[1:-1])] = value
        else:
            node[last] = value

    return mutate


_DELETE = object()


def _env(container: str, name: str, value):
    def mutate(doc):
        env = dict(doc["services"][container].get("environment") or {})
        if value is _DELETE:
            env.pop(name, None)
        else:
            env[name] = value
        doc["services"][container]["environment"] = env

    return mutate


BREAKAGES = [
    (
        "worker missing",
        check_containers,
        _set("payments-worker", _DELETE),
        "payments-worker is missing",
    ),
    ("migrate missing", check_containers, _set("gdpr-migrate", _DELETE), "gdpr-migrate is missing"),
    (
        "worker script misspelt",
        check_commands,
        _set("orders-worker.command", ["coc-order", "worker"]),
        "'coc-order'",
    ),
    (
        "unknown subcommand",
        check_commands,
        _set("orders-worker.command", ["coc-orders", "wokrer"]),
        "wokrer",
    ),
    (
        "another service's script",
        check_commands,
        _set("payments-migrate.command", ["coc-orders", "migrate"]),
        "payments-migrate",
    ),
    (
        "published port wrong",
        check_api_ports,
        _set("orders-api.ports", ["127.0.0.1:8011:8001"]),
        "orders-api",
    ),
    (
        "internal port wrong",
        check_api_ports,
        _set("payments-api.ports", ["8002:8012"]),
        "(8002, 8012)",
    ),
    ("worker publishes", check_api_ports, _set("gdpr-worker.ports", ["8099:8099"]), "gdpr-worker"),
    (
        "healthcheck port wrong",
        check_api_ports,
        _set("orders-api.healthcheck.test", ["CMD", "curl", "-f", "http://127.0.0.1:8000/healthz"]),
        "port 8000",
    ),
    (
        "host port twice",
        check_api_ports,
        _set("mailpit.ports", ["127.0.0.1:8001:8025"]),
        "host port 8001",
    ),
    (
        "undeclared variable",
        check_environment_names,
        _env("orders-api", "DATABSE_URL", "x"),
        "DATABSE_URL",
    ),
    (
        "foreign variable on infrastructure",
        check_environment_names,
        _env("postgres", "PGDATA_DIR", "x"),
        "PGDATA_DIR",
    ),
    (
        "service variable on infrastructure",
        check_environment_names,
        _env("mailpit", "LOG_LEVEL", "x"),
        "LOG_LEVEL",
    ),
    (
        "undeclared host variable",
        check_environment_names,
        _env("orders-api", "LOG_LEVEL", "${LOGLEVEL:-INFO}"),
        "${LOGLEVEL}",
    ),
    (
        "environments differ",
        check_environment_values,
        _env("orders-worker", "BUS_PREFIX", "x."),
        "orders-worker",
    ),
    (
        "database host wrong",
        check_environment_values,
        lambda d: [
            _env(f"{s}-{r}", "DATABASE_URL", "postgresql://coc:coc@db:5432/coc")(d)
            for s in SERVICE_NAMES
            for r in ("migrate", "api", "worker")
        ],
        "'db'",
    ),
    (
        "database user wrong",
        check_environment_values,
        _env("postgres", "POSTGRES_USER", "other"),
        "POSTGRES_USER",
    ),
    (
        "broker password wrong",
        check_environment_values,
        _env("rabbitmq", "RABBITMQ_DEFAULT_PASS", "other"),
        "RABBITMQ_DEFAULT_PASS",
    ),
    (
        "secret hard-coded",
        check_environment_values,
        lambda d: [
            _env(f"{s}-{r}", "STAFF_TOKEN_SECRET", "x" * 40)(d)
            for s in SERVICE_NAMES
            for r in ("migrate", "api", "worker")
        ],
        "STAFF_TOKEN_SECRET",
    ),
    (
        "api does not wait for migrate",
        check_depends_on,
        _set("orders-api.depends_on.orders-migrate.condition", "service_started"),
        "service_completed_successfully",
    ),
    (
        "migrate does not wait for postgres",
        check_depends_on,
        _set("payments-migrate.depends_on.postgres", _DELETE),
        "payments-migrate: depends_on postgres is missing",
    ),
    (
        "waits on a container without healthcheck",
        check_depends_on,
        _set("rabbitmq.healthcheck", _DELETE),
        "rabbitmq to be healthy, which has no healthcheck",
    ),
    (
        "api without healthcheck",
        check_healthchecks,
        _set("payments-api.healthcheck", _DELETE),
        "payments-api",
    ),
    (
        "healthcheck disabled",
        check_healthchecks,
        _set("mailpit.healthcheck", {"test": ["NONE"]}),
        "mailpit",
    ),
    (
        "worker healthcheck disabled",
        check_healthchecks,
        _set("gdpr-worker.healthcheck", {"disable": True}),
        "gdpr-worker",
    ),
    (
        "one-shot restarts",
        check_healthchecks,
        _set("orders-migrate.restart", "unless-stopped"),
        "orders-migrate",
    ),
    (
        "health path not served",
        check_healthz_is_served,
        _set(
            "notifications-api.healthcheck.test",
            [
                "CMD",
                "python",
                "-c",
                "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8004/health')",
            ],
        ),
        "/health,",
    ),
    (
        "dockerfile missing",
        check_builds,
        _set(
            "orders-worker.build", {"context": ".", "dockerfile": "services/orders/Dockerfile.prod"}
        ),
        "does not exist",
    ),
    (
        "wrong build context",
        check_builds,
        _set(
            "payments-api.build",
            {"context": "services/payments", "dockerfile": "services/payments/Dockerfile"},
        ),
        "build context",
    ),
    (
        "gunicorn app wrong",
        check_api_app,
        _set(
            "orders-api.command",
            ["gunicorn", "--bind", "0.0.0.0:8001", "coc_orders.entrypoints.web:create_app()"],
        ),
        "coc_orders.entrypoints.web",
    ),
    (
        "gunicorn bound to localhost",
        check_api_app,
        _set(
            "orders-api.command",
            ["gunicorn", "--bind", "127.0.0.1:8001", "coc_orders.entrypoints.api:create_app()"],
        ),
        "binds 127.0.0.1:8001",
    ),
    (
        "init scripts not mounted",
        check_postgres_init,
        _set("postgres.volumes", ["postgres-data:/var/lib/postgresql/data"]),
        "no init scripts",
    ),
    (
        "bucket misnamed",
        check_bucket,
        _set("minio-init.command", ["mc mb --ignore-existing local/coc-docs"]),
        "coc-documents",
    ),
]


@pytest.mark.parametrize(
    "check,mutate,expected", [b[1:] for b in BREAKAGES], ids=[b[0] for b in BREAKAGES]
)
def test_check_reports_a_broken_compose(compose, check, mutate, expected):
    before = check(copy.deepcopy(compose))
    broken = copy.deepcopy(compose)
    mutate(broken)
    after = check(broken)
    reported = [p for p in after if expected in p and p not in before]
    assert reported, f"{check.__name__} did not report {expected!r}; it said: {after}"


GOOD_DOCKERFILE = """FROM python:3.11-slim
EXPOSE 8001
CMD ["gunicorn", "--bind", "0.0.0.0:8001", "--workers", "2", "coc_orders.entrypoints.api:create_app()"]
"""  # noqa: E501


@pytest.mark.parametrize(
    "text,expected",
    [
        (GOOD_DOCKERFILE, None),
        (GOOD_DOCKERFILE.replace("EXPOSE 8001", "EXPOSE 8000"), "does not EXPOSE 8001"),
        (GOOD_DOCKERFILE.replace("0.0.0.0:8001", "0.0.0.0:8002"), "gunicorn binds 0.0.0.0:8002"),
        (GOOD_DOCKERFILE.replace('"--bind", "0.0.0.0:8001", ', ""), "its default 127.0.0.1:8000"),
        (GOOD_DOCKERFILE.replace("entrypoints.api", "entrypoints.wsgi"), "entrypoints.wsgi"),
        (GOOD_DOCKERFILE.replace("CMD [", 'ENTRYPOINT ["coc-orders"]\nCMD ['), "ENTRYPOINT"),
        (
            "FROM python:3.11-slim\nARG PORT=8001\nEXPOSE ${PORT}\nCMD gunicorn -b 0.0.0.0:${PORT} "
            "'coc_orders.entrypoints.api:create_app()'\n",
            None,
        ),
    ],
    ids=["good", "expose", "bind-port", "bind-default", "app-path", "entrypoint", "shell-form"],
)
def test_dockerfile_check(text, expected):
    problems = dockerfile_problems("orders", text)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_health_blueprint_serves_the_probed_path():
    """The path the compose file probes is a route of coc_shared.http.health_blueprint itself."""
    runtime = SimpleNamespace(settings=SimpleNamespace(service="consistency-check"))
    rules = {rule.rule: rule.methods for rule in _blueprint_rules(health_blueprint(runtime))}
    assert API_HEALTH_PATH in rules and "GET" in rules[API_HEALTH_PATH]
    assert API_HEALTH_PATH in served_paths()


def _blueprint_rules(blueprint):
    from flask import Flask

    app = Flask("rules")
    app.register_blueprint(blueprint)
    return app.url_map.iter_rules()


def test_deploy_readme_matches_compose(compose):
    """deploy/README.md names existing containers and console scripts, and every published port."""
    text = DEPLOY_README.read_text()
    names = set(services_of(compose))
    scripts = console_scripts()
    problems = []
    for match in re.finditer(
        r"docker compose (?:run|exec|logs|up|restart|stop)((?: -{1,2}[a-z-]+(?:=\S+)?)*) "
        r"([a-z][a-z0-9-]*)",
        text,
    ):
        if match.group(2) not in names:
            problems.append(f"deploy/README.md: `{match.group(0)}` names no container")
    for script in set(re.findall(r"docker compose (?:run|exec) [^\n`]*? (coc-[a-z][a-z-]*)", text)):
        if script not in scripts:
            problems.append(f"deploy/README.md: {script} is not a console script")
    for name, container in services_of(compose).items():
        for _ip, published, _target in port_mappings(container):
            if published is not None and str(published) not in text:
                problems.append(f"deploy/README.md does not mention port {published} ({name})")
    assert not problems, "\n".join(problems)
