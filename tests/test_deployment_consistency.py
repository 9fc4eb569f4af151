"""docker-compose.yml (the production shape) against the code, without Docker.

Every check is a function of the loaded compose document that returns the problems it finds, as
sentences naming the container and what is wrong. ``test_compose_is_consistent`` runs each check on
the real file; ``test_check_reports_a_broken_compose`` breaks a copy of the document in one way per
case and expects the check to say so.

Besides the wiring (containers, commands, ports, health, builds), the checks hold the deployment to
least privilege (issue 8): no service connects to PostgreSQL as the superuser or to RabbitMQ as
guest or the administrator, each has a database role owning its schema only (the init scripts,
read as text) and a broker user of its own (coc_shared.broker_users' definitions, loaded by the
broker at its start), and no password, secret or key has a default or is written in a file. And
they hold it to what the code needs (issue 11): every variable a service needs in production,
derived from the code's declarations, is passed as a value compose cannot leave empty, the
bucket, Redis and the broker's ports match, and deploy/.env.example with deploy/generate-env.sh
yields exactly the variables compose requires, all readable by the code.

What runs for real instead of being read: tests/test_deploy_postgres.py (the init script and every
migration as its own role, on the local PostgreSQL) and tests/test_deploy_broker.py (the
definitions one-shot's command and the Redis command line, on the local RabbitMQ and Redis).
"""

from __future__ import annotations

import base64
import copy
import functools
import importlib
import importlib.util
import inspect
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import coc_shared.service
from coc_shared.broker_users import SUPPORT, all_services, broker_user, password_variable
from coc_shared.config import (
    APPLICATIONS,
    ENV_VARS,
    SERVICE_NAMES,
    Variable,
    load,
    port_variable,
    schema_name,
)
from coc_shared.http import create_base_app, health_blueprint
from coc_shared.tables import OPS_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY_README = ROOT / "deploy" / "README.md"

INFRASTRUCTURE = ("rabbitmq", "postgres", "redis", "minio", "minio-init", "mailpit")
# the metrics' containers (deploy/prometheus, deploy/grafana; tests/test_observability_deploy.py)
OBSERVABILITY = ("prometheus", "grafana")
DEFINITIONS = "rabbitmq-definitions"  # one-shot on the pipeline's image: the broker's users
# the pipeline's images, no service (the invoice archive's one-shot and reader: payments' image)
PIPELINE_TOOLS = (DEFINITIONS, "ops-migrate", "support", "archive-migrate", "archive")
# long-running on payments' image, no service: the archive's purge loop (its ten-year end)
ARCHIVE_PURGE = "archive-purge"
ARCHIVE_SCHEMA = "archive"  # owned by the archive role, written by payments (INSERT only)
SERVICE_ROLES = ("migrate", "api", "worker")
# an application without events (the support console): its schema's one-shot and its API only
APPLICATION_ROLES = ("migrate", "api")
ONE_SHOTS = ("minio-init", *PIPELINE_TOOLS) + tuple(
    f"{s}-migrate" for s in (*SERVICE_NAMES, *APPLICATIONS)
)
# Variables the third-party images read; only infrastructure containers may set them.
IMAGE_ENV_PREFIXES = ("POSTGRES_", "RABBITMQ_", "MINIO_", "MP_", "REDIS_", "GF_")
ADMIN_USER = "coc-admin"  # the management UI's (deploy/rabbitmq/complete_definitions.py)
ADMIN_PASSWORD = "RABBITMQ_ADMIN_PASSWORD"
BROKER_PASSWORDS = {password_variable(s) for s in all_services()} | {ADMIN_PASSWORD}
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
for _service in (*SERVICE_NAMES, *APPLICATIONS):
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
    """Infrastructure, the pipeline's one-shots and tool, and a migrate, an api and a worker
    container for each of the five services."""
    names = set(services_of(compose))
    expected = (
        list(INFRASTRUCTURE + OBSERVABILITY + PIPELINE_TOOLS)
        + [ARCHIVE_PURGE]
        + [f"{s}-{role}" for s in SERVICE_NAMES for role in SERVICE_ROLES]
        + [f"{a}-{role}" for a in APPLICATIONS for role in APPLICATION_ROLES]
    )
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
    """Service containers set only variables of ENV_VARS (rabbitmq-definitions: the broker
    passwords coc_shared.broker_users reads); infrastructure containers only their image's
    (POSTGRES_*, RABBITMQ_*, MINIO_*, MP_*, REDIS_*); every ${HOST_VARIABLE} is one of those too."""
    problems = []
    for name, container in services_of(compose).items():
        problems += _variables_set(name, container)
    for key, block in compose.items():
        if not key.startswith("x-") or not key.endswith("-env"):
            continue
        for variable in block or {}:
            if variable not in ENV_VARS and variable != "<<":
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
    """The variables container ``name`` sets: the services' (ENV_VARS) in a container of the
    pipeline's images, its image's in an infrastructure container."""
    problems = []
    if "env_file" in container:
        problems.append(f"{name}: env_file hides variable names from this check; use environment")
    infrastructure = "build" not in container
    allowed = BROKER_PASSWORDS if name == DEFINITIONS else set()
    for variable in environment_of(container):
        if variable in ENV_VARS:
            if infrastructure:
                problems.append(
                    f"{name}: sets {variable}, a variable of the services, in a third-party image"
                )
            continue
        if variable in allowed or (infrastructure and variable.startswith(IMAGE_ENV_PREFIXES)):
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


def check_service_environments(compose: dict) -> list[str]:
    """A service's migrate, api and worker containers share one environment (its x-NAME-env
    anchor), whose SERVICE_HOST other containers can reach."""
    problems = []
    services = services_of(compose)
    for service in SERVICE_NAMES:
        names = [f"{service}-{r}" for r in SERVICE_ROLES if f"{service}-{r}" in services]
        if not names:
            continue
        reference = environment_of(services[names[0]])
        for name in names[1:]:
            env = environment_of(services[name])
            differing = sorted(
                k for k in set(env) | set(reference) if env.get(k) != reference.get(k)
            )
            if differing:
                problems.append(
                    f"{name}: environment differs from {names[0]}'s in {differing} (use the "
                    f"x-{service}-env anchor)"
                )
        for name in names:
            host = environment_of(services[name]).get("SERVICE_HOST")
            if host != "0.0.0.0":
                problems.append(
                    f"{name}: SERVICE_HOST={host} is unreachable from other containers; use 0.0.0.0"
                )
    return problems


# ----------------------------------------------------------------------------------------------
# identities: each service's database role and broker user, no superuser, no default password

SECRET_NAME = re.compile(r"PASSWORD|PASS$|SECRET|_KEY$|_KEY_ID$|(^|_)TOKEN$")
_SUBSTITUTION = re.compile(r"\$\{[^}]*\}")


def is_secret(variable: str) -> bool:
    return bool(SECRET_NAME.search(variable))


def required_substitution(value: str | None) -> str | None:
    """The host variable when ``value`` is exactly ``${NAME:?message}`` (compose refuses to start
    when NAME is unset or empty), else None."""
    match = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]*\}", value or "")
    return match.group(1) if match else None


def split_url(raw: str) -> dict | None:
    """scheme, user, password (raw text, substitutions kept), host, port and path of a URL whose
    parts may be ``${...}`` substitutions (their messages may hold any character but ``}``)."""
    atoms = _SUBSTITUTION.findall(raw)
    masked = _SUBSTITUTION.sub(lambda m: f"\0{atoms.index(m.group(0))}\0", raw)
    match = re.fullmatch(
        r"(?P<scheme>[a-z0-9+]+)://(?:(?P<user>[^:@/]*)(?::(?P<password>[^@/]*))?@)?"
        r"(?P<host>[^:/?]*)(?::(?P<port>[^/?]*))?(?P<path>.*)",
        masked,
    )
    if not match:
        return None

    def unmask(text: str | None) -> str | None:
        return None if text is None else re.sub(r"\0(\d+)\0", lambda m: atoms[int(m[1])], text)

    return {k: unmask(v) for k, v in match.groupdict().items()}


def check_secrets(compose: dict) -> list[str]:
    """No password, secret or key has a default, may be empty or is written in the file: each comes
    from the host as ${NAME:?...} (compose refuses to start without it), in environment values, URLs
    and command lines alike."""
    problems = []
    for where, text in strings_in(compose):
        for match in _VARIABLE.finditer(text.replace("$$", "")):
            name, op, arg = match.group(1) or match.group(4), match.group(2), match.group(3)
            if is_secret(name) and op != ":?":
                problems.append(
                    f"{where}: secret ${{{name}}} "
                    + (f"has the default {arg!r}" if op in (":-", "-") else "may be empty")
                    + f"; use ${{{name}:?...}}"
                )
        problems += _url_passwords(where, text)
    for name, container in services_of(compose).items():
        for variable, value in environment_of(container).items():
            if is_secret(variable) and required_substitution(value) is None:
                problems.append(
                    f"{name}: {variable} is {value!r}, not a required host variable "
                    f"(${{{variable}:?...}})"
                )
        args = as_args(container.get("command"))
        for flag, value in zip(args, args[1:]):
            if flag in ("--requirepass", "--password") and required_substitution(value) is None:
                problems.append(f"{name}: {flag} {value!r} is not a required host variable")
    return problems


def _url_passwords(where: str, text: str) -> list[str]:
    """Connection URLs (postgres, amqp, redis) in ``text`` carry a user and a required host
    variable as password."""
    problems = []
    atoms = _SUBSTITUTION.findall(text)
    masked = _SUBSTITUTION.sub(lambda m: f"\0{atoms.index(m.group(0))}\0", text)
    for masked_word in masked.split():
        word = re.sub(r"\0(\d+)\0", lambda m: atoms[int(m[1])], masked_word)
        url = split_url(word.strip("'\";"))
        if url is None or url["scheme"].split("+")[0] not in CREDENTIAL_SCHEMES:
            continue
        if required_substitution(url["password"]) is None:
            problems.append(
                f"{where}: {url['scheme']}:// URL with password {url['password']!r}; use a "
                "required host variable (${NAME:?...})"
            )
    return problems


CREDENTIAL_SCHEMES = ("postgres", "postgresql", "amqp", "amqps", "redis", "rediss")


def read_init(compose: dict) -> tuple[str, str, str]:
    """(folder, script text, SQL text) of the postgres init scripts compose mounts; empty texts
    when absent."""
    postgres = services_of(compose).get("postgres") or {}
    mounts = [
        v
        for v in postgres.get("volumes") or []
        if isinstance(v, str) and ":/docker-entrypoint-initdb.d" in v
    ]
    if not mounts:
        return "", "", ""
    folder = (COMPOSE_FILE.parent / mounts[0].split(":", 1)[0]).resolve()
    scripts = sorted(folder.glob("*.sh")) if folder.is_dir() else []
    script = "\n".join(s.read_text() for s in scripts)
    sql_files = re.findall(r"/docker-entrypoint-initdb\.d/([\w.-]+)", script)
    sql = "\n".join((folder / f).read_text() for f in sql_files if (folder / f).is_file())
    sql += "\n".join(s.read_text() for s in sorted(folder.glob("*.sql")))
    return str(folder), script, sql


def init_roles(script: str, sql: str) -> dict:
    """What the init scripts create, read from their text: ``roles`` (name -> login, privileged
    attributes, password variable of the environment, groups), ``owners`` (schema -> role),
    ``ops_users`` (roles given USAGE on ops) and ``literal_passwords``."""
    prefix_match = re.search(r"COC_DB_ROLE_PREFIX:-(\w*)\}", script)
    prefix = prefix_match.group(1) if prefix_match else ""
    sql = re.sub(r"--[^\n]*", "", sql)
    names = {
        var: prefix + suffix for var, suffix in re.findall(r"\\set (\w+) :prefix '(\w+)'", sql)
    }
    env_of = dict(re.findall(r"-v (\w+)=\"\$\{?(\w+)\}?\"", script))
    roles = {}
    for var, options in re.findall(r"CREATE ROLE :\"(\w+)\"([^;]*);", sql, flags=re.S):
        words = re.findall(r"[A-Z]+", options)
        password = re.search(r"PASSWORD :'(\w+)'", options)
        roles[names.get(var, var)] = {
            "login": "LOGIN" in words,
            "privileged": sorted(
                {w for w in words if w in ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION")}
                | ({"BYPASSRLS"} if "BYPASSRLS" in words else set())
            ),
            "password_variable": env_of.get(password.group(1)) if password else None,
            "groups": [names.get(g, g) for g in re.findall(r"IN ROLE :\"(\w+)\"", options)],
        }
    owners = {
        schema: names.get(var, var)
        for schema, var in re.findall(r"CREATE SCHEMA (\w+) AUTHORIZATION :\"(\w+)\"", sql)
    }
    ops_users = [
        names.get(v, v)
        for v in re.findall(rf"GRANT USAGE ON SCHEMA {OPS_SCHEMA} TO :\"(\w+)\"", sql)
    ]
    granted_to_all = re.findall(r"GRANT [^;]* TO PUBLIC|ALTER ROLE [^;]*SUPERUSER", sql, flags=re.I)
    return {
        "roles": roles,
        "owners": owners,
        "ops_users": ops_users,
        "literal_passwords": re.findall(r"PASSWORD\s+'[^']*'", sql, flags=re.I),
        "created_schemas": re.findall(
            r"CREATE\s+SCHEMA\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)\"?", sql, flags=re.I
        ),
        "revokes": bool(
            re.search(r"REVOKE ALL ON DATABASE :\"DBNAME\" FROM PUBLIC", sql)
            and re.search(r"REVOKE ALL ON SCHEMA public FROM PUBLIC", sql)
        ),
        "too_wide": granted_to_all,
        "checked_variables": re.findall(r"POSTGRES_\$\{role\}_PASSWORD", script)
        and re.findall(r"for role in ([A-Z_ ]+); do", script),
    }


def database_identities() -> dict[str, str]:
    """Container -> the schema whose owner its DATABASE_URL must name (ops-migrate: ops) or, for
    support, the role every service's DATABASE_URL must differ from."""
    identities = {f"{s}-{r}": schema_name(s) for s in SERVICE_NAMES for r in SERVICE_ROLES}
    identities["ops-migrate"] = OPS_SCHEMA
    identities["archive-migrate"] = identities["archive"] = ARCHIVE_SCHEMA
    identities[ARCHIVE_PURGE] = ARCHIVE_SCHEMA
    identities.update({f"{a}-{r}": schema_name(a) for a in APPLICATIONS for r in APPLICATION_ROLES})
    return identities


def check_postgres_init(compose: dict) -> list[str]:
    """The init scripts create every service's schema and ops, each owned by a login role of its
    own that is neither superuser nor able to create databases or roles, with its password from a
    required host variable, and take PUBLIC's rights on the database and on `public` away."""
    folder, script, sql = read_init(compose)
    if not script:
        return ["postgres: no init script (*.sh) mounted at /docker-entrypoint-initdb.d"]
    return init_problems(compose, script, sql)


def init_problems(compose: dict, script: str, sql: str) -> list[str]:
    """``check_postgres_init`` on the texts of the init script and of its SQL."""
    init = init_roles(script, sql)
    postgres_env = environment_of(services_of(compose).get("postgres") or {})
    return (
        _schema_owner_problems(init)
        + _role_problems(init, postgres_env)
        + _public_problems(init)
        + _ops_user_problems(init)
    )


def _schema_owner_problems(init: dict) -> list[str]:
    problems = []
    expected = {schema_name(s) for s in (*SERVICE_NAMES, *APPLICATIONS)} | {
        OPS_SCHEMA,
        ARCHIVE_SCHEMA,
    }
    if set(init["created_schemas"]) != expected:
        problems.append(
            f"postgres init scripts create schemas {sorted(set(init['created_schemas']))}, the "
            f"services own {sorted(expected)}"
        )
    owners = init["owners"]
    for schema in sorted(expected):
        role = owners.get(schema)
        if role is None:
            problems.append(f"postgres init: schema {schema} has no owning role")
            continue
        others = sorted(s for s, r in owners.items() if r == role and s != schema)
        if others:
            problems.append(f"postgres init: role {role} owns {schema} and also {others}")
    return problems


def _role_problems(init: dict, postgres_env: dict) -> list[str]:
    """No role is privileged; each login role's password comes from a required variable."""
    problems = []
    for name, role in init["roles"].items():
        if role["privileged"]:
            problems.append(f"postgres init: role {name} is {', '.join(role['privileged'])}")
        if not role["login"]:
            continue
        variable = role["password_variable"]
        if variable is None:
            problems.append(f"postgres init: login role {name} gets no password from a variable")
        elif required_substitution(postgres_env.get(variable)) != variable:
            problems.append(
                f"postgres init: {name}'s password comes from {variable}, which the postgres "
                f"container does not set as ${{{variable}:?...}}"
            )
    return problems + [
        f"postgres init: a password is written in the SQL ({literal})"
        for literal in init["literal_passwords"]
    ]


def _public_problems(init: dict) -> list[str]:
    problems = [f"postgres init: {wide.strip()}" for wide in init["too_wide"]]
    if not init["revokes"]:
        problems.append(
            "postgres init: PUBLIC keeps its rights on the database or on schema public "
            '(REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC; REVOKE ALL ON SCHEMA public FROM '
            "PUBLIC)"
        )
    return problems


def _ops_user_problems(init: dict) -> list[str]:
    """Every service's role may use the ops schema (directly or through a group); an application's
    (the console: no events) needs no ops table."""
    problems = []
    no_ops = {OPS_SCHEMA, ARCHIVE_SCHEMA} | {schema_name(a) for a in APPLICATIONS}
    for schema, role in init["owners"].items():
        if schema in no_ops or role not in init["roles"]:
            continue
        users = set(init["ops_users"])
        if role not in users and not set(init["roles"][role]["groups"]) & users:
            problems.append(f"postgres init: {role} ({schema}) may not use the ops schema")
    return problems


def check_ops_grants(compose: dict) -> list[str]:
    """ops-migrate grants the ops rights to the group of the services' roles and to the role
    the support tool connects as, both roles the init scripts create and allow to use ops."""
    services = services_of(compose)
    args = as_args((services.get("ops-migrate") or {}).get("command"))
    given = dict(zip(args, args[1:]))
    _folder, script, sql = read_init(compose)
    init = init_roles(script, sql)
    service_roles = {init["owners"].get(schema_name(s)) for s in SERVICE_NAMES} - {None}
    groups = [
        g
        for g, role in init["roles"].items()
        if not role["login"]
        and all(g in init["roles"].get(r, {}).get("groups", []) for r in service_roles)
    ]
    support = split_url(environment_of(services.get("support") or {}).get("DATABASE_URL") or "")
    problems = []
    if (
        given.get("--services-role") not in groups
        or given["--services-role"] not in init["ops_users"]
    ):
        problems.append(
            f"ops-migrate: --services-role is {given.get('--services-role')!r}, not the group of "
            f"the services' roles allowed to use ops ({groups})"
        )
    if support is None or given.get("--staff-role") != support["user"]:
        problems.append(
            f"ops-migrate: --staff-role is {given.get('--staff-role')!r}, not the support tool's "
            f"role {support and support['user']!r}"
        )
    return problems


def check_database_roles(compose: dict) -> list[str]:
    """Each service's containers connect as the role owning the service's schema (ops-migrate as
    the ops schema's owner, support as a role of its own), never as the superuser, with the password
    variable the init script gives that role; no two services share a role."""
    problems = []
    services = services_of(compose)
    postgres = environment_of(services.get("postgres") or {})
    superuser = interpolate(postgres.get("POSTGRES_USER") or "") or "postgres"
    database = interpolate(postgres.get("POSTGRES_DB") or "") or superuser
    _folder, script, sql = read_init(compose)
    init = init_roles(script, sql)
    used_by: dict[str, set[str]] = {}
    for name, schema in {**database_identities(), "support": None}.items():
        container = services.get(name)
        if container is None:
            continue
        raw = environment_of(container).get("DATABASE_URL")
        url = split_url(raw or "")
        if url is None:
            problems.append(f"{name}: DATABASE_URL is not set")
            continue
        user = url["user"]
        used_by.setdefault(user, set()).add(name.rsplit("-", 1)[0])
        if url["scheme"] not in ("postgresql", "postgres", "postgresql+psycopg"):
            problems.append(f"{name}: DATABASE_URL is {url['scheme']}://, not PostgreSQL")
        if url["host"] != "postgres" or url["path"].lstrip("/") != database:
            problems.append(
                f"{name}: DATABASE_URL points to {url['host']}{url['path']}, not the postgres "
                f"container's database {database}"
            )
        if user in (superuser, "postgres") or user not in init["roles"]:
            problems.append(
                f"{name}: DATABASE_URL connects as {user!r}, "
                + (
                    "the superuser"
                    if user in (superuser, "postgres")
                    else "a role the init scripts do not create"
                )
            )
            continue
        if schema is not None and init["owners"].get(schema) != user:
            problems.append(
                f"{name}: DATABASE_URL connects as {user}, not as {schema}'s owner "
                f"{init['owners'].get(schema)}"
            )
        if schema is None and user in init["owners"].values():
            problems.append(f"{name}: DATABASE_URL connects as {user}, the owner of a schema")
        variable = init["roles"][user]["password_variable"]
        if required_substitution(url["password"]) != variable:
            problems.append(
                f"{name}: DATABASE_URL's password is {url['password']!r}, not ${{{variable}:?...}} "
                f"(the password 10-roles.sh gives {user})"
            )
    for user, owners in used_by.items():
        if len(owners) > 1:
            problems.append(f"{sorted(owners)} share the database role {user}")
    return problems


def check_broker_users(compose: dict) -> list[str]:
    """Each service's containers connect to RabbitMQ as the service's own user
    (coc_shared.broker_users), support as the support user, with the password variable the
    rabbitmq-definitions one-shot turns into that user; nobody as guest or the administrator."""
    problems = []
    services = services_of(compose)
    definitions = environment_of(services.get(DEFINITIONS) or {})
    identities = {f"{s}-{r}": s for s in SERVICE_NAMES for r in SERVICE_ROLES}
    identities["support"] = SUPPORT
    users: dict[str, set[str]] = {}
    for name, owner in identities.items():
        container = services.get(name)
        if container is None:
            continue
        url = split_url(environment_of(container).get("RABBITMQ_URL") or "")
        if url is None:
            problems.append(f"{name}: RABBITMQ_URL is not set")
            continue
        users.setdefault(url["user"], set()).add(owner)
        if url["scheme"] not in ("amqp", "amqps") or url["host"] != "rabbitmq":
            problems.append(f"{name}: RABBITMQ_URL is not amqp:// to the rabbitmq container")
        expected = broker_user("", owner)
        if url["user"] != expected:
            problems.append(
                f"{name}: RABBITMQ_URL connects as {url['user']!r}, not as {owner}'s own user "
                f"{expected!r}"
                + (" (an administrator)" if url["user"] in (ADMIN_USER, "guest") else "")
            )
        variable = password_variable(owner)
        if required_substitution(url["password"]) != variable:
            problems.append(
                f"{name}: RABBITMQ_URL's password is {url['password']!r}, not ${{{variable}:?...}}"
            )
        if required_substitution(definitions.get(variable)) != variable:
            problems.append(
                f"{name}: {DEFINITIONS} does not pass ${{{variable}:?...}}, so no user {expected} "
                "is defined with that password"
            )
    for user, owners in users.items():
        if len(owners) > 1:
            problems.append(f"{sorted(owners)} share the broker user {user}")
    return problems


def check_broker(compose: dict) -> list[str]:
    """The broker loads, at every start, the definitions file the rabbitmq-definitions one-shot
    writes from coc_shared.broker_users (which it waits for), with the administrator's password
    required; it creates no default user; management UI and Prometheus ports published locally."""
    services = services_of(compose)
    rabbitmq, oneshot = services.get("rabbitmq") or {}, services.get(DEFINITIONS) or {}
    if not oneshot:
        return [f"{DEFINITIONS}: missing (nothing writes the broker's users)"]
    words = " ".join(as_args(oneshot.get("entrypoint")) + as_args(oneshot.get("command")))
    output = re.search(r"--output (\S+)", words)
    problems = _definitions_oneshot(oneshot, words)
    settings = _broker_settings(rabbitmq)
    loaded = settings.get("load_definitions")
    if not loaded:
        problems.append("rabbitmq: no conf.d file sets load_definitions")
    elif output is None or Path(loaded).name != Path(output.group(1)).name:
        problems.append(
            f"rabbitmq: loads {loaded}, but {DEFINITIONS} writes "
            f"{output.group(1) if output else 'nothing'}"
        )
    else:
        source = _mounts(rabbitmq).get(str(Path(loaded).parent))
        if source is None or source != _mounts(oneshot).get(str(Path(output.group(1)).parent)):
            problems.append(
                f"rabbitmq: {Path(loaded).parent} is not the volume {DEFINITIONS} writes to"
            )
    depends = (rabbitmq.get("depends_on") or {}).get(DEFINITIONS) or {}
    if depends.get("condition") != "service_completed_successfully":
        problems.append(f"rabbitmq: does not wait for {DEFINITIONS} to complete successfully")
    for variable in ("RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"):
        if variable in environment_of(rabbitmq):
            problems.append(
                f"rabbitmq: sets {variable}, an account RabbitMQ does not create when it loads "
                "definitions at boot"
            )
    published = {(ip, p) for ip, p, _t in port_mappings(rabbitmq)}
    for port, what in ((15672, "management UI"), (15692, "Prometheus metrics")):
        if ("127.0.0.1", port) not in published:
            problems.append(f"rabbitmq: the {what} port {port} is not published on 127.0.0.1")
    if settings.get("prometheus.tcp.port", "15692") != "15692":
        problems.append(f"rabbitmq: prometheus.tcp.port is {settings['prometheus.tcp.port']}")
    return problems


def _definitions_oneshot(oneshot: dict, words: str) -> list[str]:
    problems = []
    if "python -m coc_shared.broker_users definitions" not in words:
        problems.append(
            f"{DEFINITIONS}: does not run python -m coc_shared.broker_users definitions"
        )
    env = environment_of(oneshot)
    for variable in sorted(BROKER_PASSWORDS):
        if required_substitution(env.get(variable)) != variable:
            problems.append(f"{DEFINITIONS}: {variable} is not ${{{variable}:?...}}")
    return problems


def _mounts(container: dict) -> dict[str, str]:
    """Mount point -> volume or host path."""
    return {
        target: source
        for source, target, *_ in (
            v.split(":") for v in container.get("volumes") or [] if isinstance(v, str)
        )
    }


def _broker_settings(rabbitmq: dict) -> dict[str, str]:
    """The settings of the rabbitmq.conf files compose mounts into /etc/rabbitmq/conf.d/."""
    conf = ""
    for target, source in _mounts(rabbitmq).items():
        path = COMPOSE_FILE.parent / source
        if target.startswith("/etc/rabbitmq/conf.d/") and path.is_file():
            conf += path.read_text() + "\n"
    return dict(re.findall(r"^\s*([\w.]+)\s*=\s*(\S+)", conf, flags=re.M))


# ----------------------------------------------------------------------------------------------
# what each service needs in production, derived from the code's declarations

# Declared without a default, yet not needed by a production deployment (the reason why).
OPTIONAL_WITHOUT_DEFAULT = {
    "PARKING_DATABASE_URL": "parked messages live in DATABASE_URL's database (schema ops)",
    "BUS_PREFIX": "empty in production",
    "STAFF_TOKEN": "a staff member's own token, given to one `docker compose run -e STAFF_TOKEN`",
    "RABBITMQ_CA_FILE": "AMQP over TLS only (deploy/README.md, TLS); the system's CAs otherwise",
    "ORDERS_BRANDS_PATH": "the brand list shipped in the package",
    "ORDERS_DEADLINES_PATH": "the deadlines file shipped in the package",
    "STAFF_TOKEN_PRIVATE_KEY": "kept from every container (KEPT_OUT)",
    "CI": "set by continuous integration for the test suite only",
    "WORKER_PORT": "unset, a worker listens on its API port + 1000 (9001… in its own container)",
    "PROMETHEUS_MULTIPROC_DIR": "set by every image (ENV), for gunicorn's processes",
    "PERSONAL_DATA_KEK_PREVIOUS": "during a rotation of PERSONAL_DATA_KEK only (deploy/README.md)",
}
# Never in a container's environment in the file (why): given to one command at a time.
KEPT_OUT = {
    "STAFF_TOKEN_PRIVATE_KEY": (
        "it signs staff tokens; an admin gives it to one "
        "`docker compose run -e STAFF_TOKEN_PRIVATE_KEY support issue-token`"
    ),
}
# Shared variables only some services need: the services whose code matches the pattern.
SCOPED_SHARED = {"CUSTOMER_TOKEN_SECRET": r"customer_token|request_account"}

_ATTRIBUTION = """
import importlib, json, pkgutil, sys
from coc_shared import config
import coc_shared
def walk(package):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if ".migrations" not in info.name and not info.name.endswith(".__main__"):
            try:
                importlib.import_module(info.name)
            except Exception:
                pass
walk("coc_shared")
out = {"": sorted(config.ENV_VARS)}
for service, package in json.loads(sys.argv[1]).items():
    before = set(config.ENV_VARS)
    try:
        walk(package)
    except ModuleNotFoundError:
        pass
    out[service] = sorted(set(config.ENV_VARS) - before)
print(json.dumps(out))
"""


@functools.cache
def declared_by() -> dict[str, tuple[str, ...]]:
    """Variable names declared by coc_shared ("") and by each service's package, found by
    importing them one after the other in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _ATTRIBUTION, json.dumps({s: package(s) for s in SERVICE_NAMES})],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {k: tuple(v) for k, v in json.loads(done.stdout).items()}


def loopback_default(variable) -> bool:
    """A default that only works on one machine: a loopback address or an in-process store."""
    default = variable.default or ""
    return bool(re.search(r"127\.0\.0\.1|localhost|^memory://", default))


def needed_variables(service: str, declared: dict, variables: dict) -> dict[str, str]:
    """Variable -> why ``service`` needs it in production: declared by shared or by the service,
    with no default (unless OPTIONAL_WITHOUT_DEFAULT says why not) or with a default that only works
    on one machine; a SCOPED_SHARED one only where the service's code uses it."""
    needed = {}
    source = "\n".join(
        p.read_text()
        for p in (ROOT / "services" / service / "src").rglob("*.py")
        if "migrations" not in p.parts
    )
    for name in (*declared.get("", ()), *declared.get(service, ())):
        variable = variables.get(name)
        if variable is None:
            continue
        if name in SCOPED_SHARED and not re.search(SCOPED_SHARED[name], source):
            continue
        if variable.default is None and name not in OPTIONAL_WITHOUT_DEFAULT:
            needed[name] = "declared without a default"
        elif loopback_default(variable):
            needed[name] = f"its default {variable.default!r} only works on one machine"
    return needed


def check_required_variables(
    compose: dict, declared: dict | None = None, variables: dict | None = None
) -> list[str]:
    """Every container of a service gets each variable the service needs in production (derived
    from the code's declarations, ``needed_variables``) as a value compose cannot leave empty, and
    no variable declared by another service or a scoped shared one it does not use."""
    declared = declared_by() if declared is None else declared
    variables = ENV_VARS if variables is None else variables
    problems = []
    services = services_of(compose)
    own = {s: set(declared.get(s, ())) for s in SERVICE_NAMES}
    for service in SERVICE_NAMES:
        needed = needed_variables(service, declared, variables)
        foreign = set().union(*(own[s] for s in SERVICE_NAMES if s != service)) - own[service]
        scoped_out = {n for n in SCOPED_SHARED if n not in needed}
        for role in SERVICE_ROLES:
            name = f"{service}-{role}"
            if name not in services:
                continue
            env = environment_of(services[name])
            for variable, why in sorted(needed.items()):
                problem = _missing_value(env.get(variable), variables[variable])
                if problem:
                    problems.append(f"{name}: {variable} ({why}) {problem}")
            for variable in sorted(set(env) & set(variables) - set(needed)):
                problem = _unreadable(env[variable], variables[variable])
                if problem:
                    problems.append(f"{name}: {variable} {problem}")
            for variable in sorted(set(env) & (foreign | scoped_out)):
                problems.append(
                    f"{name}: sets {variable}, which {service} does not use (least privilege)"
                )
    for name, container in services.items():
        for variable in sorted(set(environment_of(container)) & set(KEPT_OUT)):
            problems.append(f"{name}: sets {variable}: {KEPT_OUT[variable]}")
    return problems


def _unreadable(value: str | None, variable) -> str | None:
    """Why the code cannot read ``value``, compose's literal text for ``variable``, or None (also
    for a value compose substitutes: check_env_example reads those)."""
    if not value or "$" in value:
        return None
    try:
        variable.read(value)
    except ValueError as exc:
        return f"is {value!r}: {exc}"
    return None


def _missing_value(value: str | None, variable) -> str | None:
    """Why ``value`` (compose's text for ``variable``) leaves the variable unset, or None."""
    if value is None:
        return "is not set"
    atoms = list(_VARIABLE.finditer(value.replace("$$", "")))
    literal = _VARIABLE.sub("", value.replace("$$", "$")).strip()
    if not atoms:
        if not literal:
            return "is empty"
        if value == variable.default:
            return f"is its default {value!r}"
        try:
            variable.read(value)
        except ValueError as exc:
            return f"is {value!r}: {exc}"
        return None
    if literal:
        return None  # a URL or a text around required parts: checked by check_secrets
    for match in atoms:
        if match.group(2) != ":?":
            return f"is {value!r}, which compose may leave empty; use ${{NAME:?...}}"
    return None


def check_bucket(compose: dict) -> list[str]:
    """minio-init creates the bucket orders writes to (its ORDERS_S3_BUCKET, else the code's
    default) at the MinIO container orders points to, and gives orders' own account (the same
    host variables as orders' S3 keys) a policy limited to that bucket."""
    services = services_of(compose)
    orders = environment_of(services.get("orders-api") or {})
    bucket = orders.get("ORDERS_S3_BUCKET") or ENV_VARS["ORDERS_S3_BUCKET"].default
    problems = []
    if orders.get("ORDERS_S3_ENDPOINT_URL") != "http://minio:9000":
        problems.append(
            f"orders-api: ORDERS_S3_ENDPOINT_URL is {orders.get('ORDERS_S3_ENDPOINT_URL')!r}, not "
            "the minio container (http://minio:9000)"
        )
    if orders.get("ORDERS_DOCUMENT_STORE") not in (None, "s3"):
        problems.append(f"orders-api: ORDERS_DOCUMENT_STORE is {orders['ORDERS_DOCUMENT_STORE']}")
    container = services.get("minio-init") or {}
    words = " ".join(as_args(container.get("entrypoint")) + as_args(container.get("command")))
    if not re.search(rf"mc mb (--ignore-existing |-p )*\S+/{re.escape(bucket)}(;|\s|$)", words):
        problems.append(
            f"minio-init: does not create the bucket {bucket} (orders' ORDERS_S3_BUCKET; "
            f"mc mb --ignore-existing local/{bucket})"
        )
    init_env = environment_of(container)
    policy = re.search(r"mc admin policy create \S+ (\S+) ([^\s;]+)", words)
    user = re.search(r'mc admin user add \S+ "?\$\$?(\w+)"?', words)
    attach = re.search(r'mc admin policy attach \S+ (\S+) --user "?\$\$?(\w+)"?', words)
    if not (policy and user and attach and attach.group(1) == policy.group(1)):
        return problems + ["minio-init: does not give orders an account with its own policy"]
    key = required_substitution(init_env.get(user.group(1)))
    if key != required_substitution(orders.get("ORDERS_S3_ACCESS_KEY_ID")) or key is None:
        problems.append("minio-init: the account it creates is not orders' ORDERS_S3_ACCESS_KEY_ID")
    mounts = {
        target: source
        for source, target, *_ in (
            v.split(":") for v in container.get("volumes") or [] if isinstance(v, str)
        )
    }
    source = mounts.get(policy.group(2))
    if source is None or not (COMPOSE_FILE.parent / source).is_file():
        return problems + [f"minio-init: policy file {policy.group(2)} is not mounted"]
    document = json.loads((COMPOSE_FILE.parent / source).read_text())
    resources = {
        r for statement in document.get("Statement", []) for r in (statement.get("Resource") or [])
    }
    allowed = {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    if not resources or not resources <= allowed:
        problems.append(f"{source}: grants {sorted(resources)}, not only the bucket {bucket}")
    return problems


# The services whose rate limits count in the redis container (<PREFIX>_RATE_LIMIT_STORAGE).
RATE_LIMITED = {"orders": "ORDERS", "payments": "PAYMENTS"}


def check_redis(compose: dict) -> list[str]:
    """orders' and payments' rate limits count in the redis container, behind the password redis
    requires; their APIs wait for redis to be healthy (check_depends_on)."""
    services = services_of(compose)
    problems = []
    redis = services.get("redis") or {}
    required = None
    args = as_args(redis.get("command"))
    for flag, value in zip(args, args[1:]):
        if flag == "--requirepass":
            required = required_substitution(value)
    if required is None:
        problems.append("redis: no --requirepass ${NAME:?...}")
    for service, prefix in RATE_LIMITED.items():
        variable = f"{prefix}_RATE_LIMIT_STORAGE"
        for role in SERVICE_ROLES:
            name = f"{service}-{role}"
            url = split_url(environment_of(services.get(name) or {}).get(variable) or "")
            if url is None or url["scheme"] not in ("redis", "rediss") or url["host"] != "redis":
                problems.append(f"{name}: {variable} is not the redis container")
            elif required_substitution(url["password"]) != required:
                problems.append(f"{name}: {variable}'s password is not redis' ${required}")
    return problems


def check_published_locally(compose: dict) -> list[str]:
    """Every published port is bound to 127.0.0.1 (a reverse proxy exposes what must be)."""
    return [
        f"{name}: publishes {published} on {ip or 'every interface'}"
        for name, container in services_of(compose).items()
        for ip, published, _target in port_mappings(container)
        if published is not None and ip != "127.0.0.1"
    ]


def check_depends_on(compose: dict) -> list[str]:
    """migrate waits for healthy postgres and rabbitmq and for ops-migrate; api and worker for
    their migrate to succeed (orders-api also for redis and the bucket, payments-api for redis);
    ops-migrate for postgres,
    the broker for its definitions, the bucket one-shot for minio; every dependency exists and can
    become healthy."""
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

    done = "service_completed_successfully"
    for service in SERVICE_NAMES:
        expect(f"{service}-migrate", "postgres", "service_healthy")
        expect(f"{service}-migrate", "rabbitmq", "service_healthy")
        expect(f"{service}-migrate", "ops-migrate", done)
        expect(f"{service}-api", f"{service}-migrate", done)
        expect(f"{service}-worker", f"{service}-migrate", done)
    for service in RATE_LIMITED:
        expect(f"{service}-api", "redis", "service_healthy")
    expect("orders-api", "minio-init", done)
    expect("ops-migrate", "postgres", "service_healthy")
    expect("payments-migrate", "archive-migrate", done)
    expect("archive-migrate", "postgres", "service_healthy")
    expect("rabbitmq", DEFINITIONS, done)
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


CHECKS = [
    check_containers,
    check_commands,
    check_api_ports,
    check_published_locally,
    check_environment_names,
    check_service_environments,
    check_secrets,
    check_postgres_init,
    check_database_roles,
    check_ops_grants,
    check_broker_users,
    check_broker,
    check_required_variables,
    check_redis,
    check_bucket,
    check_depends_on,
    check_healthchecks,
    check_healthz_is_served,
    check_builds,
    check_api_app,
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


def _env_all(service: str, name: str, value):
    """A mutation setting (or, with _DELETE, removing) ``name`` in the service's three
    containers."""

    def mutate(doc):
        for role in SERVICE_ROLES:
            _env(f"{service}-{role}", name, value)(doc)

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
        check_service_environments,
        _env("orders-worker", "BUS_PREFIX", "x."),
        "orders-worker",
    ),
    (
        "service bound to localhost",
        check_service_environments,
        _env_all("gdpr", "SERVICE_HOST", "127.0.0.1"),
        "SERVICE_HOST=127.0.0.1",
    ),
    (
        "database host wrong",
        check_database_roles,
        _env_all(
            "orders",
            "DATABASE_URL",
            "postgresql://coc_orders:${POSTGRES_ORDERS_PASSWORD:?x}@db:5432/coc",
        ),
        "points to db/coc",
    ),
    (
        "service as the superuser",
        check_database_roles,
        _env_all(
            "orders",
            "DATABASE_URL",
            "postgresql://postgres:${POSTGRES_PASSWORD:?x}@postgres:5432/coc",
        ),
        "orders-api: DATABASE_URL connects as 'postgres', the superuser",
    ),
    (
        "superuser renamed and used",
        check_database_roles,
        lambda d: [
            _env("postgres", "POSTGRES_USER", "coc")(d),
            _env_all(
                "gdpr", "DATABASE_URL", "postgresql://coc:${POSTGRES_PASSWORD:?x}@postgres:5432/coc"
            )(d),
        ],
        "gdpr-worker: DATABASE_URL connects as 'coc', the superuser",
    ),
    (
        "two services share a role",
        check_database_roles,
        _env_all(
            "payments",
            "DATABASE_URL",
            "postgresql://coc_orders:${POSTGRES_ORDERS_PASSWORD:?x}@postgres:5432/coc",
        ),
        "share the database role coc_orders",
    ),
    (
        "service as another schema's owner",
        check_database_roles,
        _env_all(
            "notifications",
            "DATABASE_URL",
            "postgresql://coc_ops:${POSTGRES_OPS_PASSWORD:?x}@postgres:5432/coc",
        ),
        "not as notifications's owner coc_notifications",
    ),
    (
        "role's password from another variable",
        check_database_roles,
        _env_all(
            "gdpr",
            "DATABASE_URL",
            "postgresql://coc_gdpr:${POSTGRES_ORDERS_PASSWORD:?x}@postgres:5432/coc",
        ),
        "gdpr-api: DATABASE_URL's password",
    ),
    (
        "support as a service's role",
        check_database_roles,
        _env(
            "support",
            "DATABASE_URL",
            "postgresql://coc_orders:${POSTGRES_ORDERS_PASSWORD:?x}@postgres:5432/coc",
        ),
        "support: DATABASE_URL connects as coc_orders, the owner of a schema",
    ),
    (
        "ops migrated by a service",
        check_database_roles,
        _env(
            "ops-migrate",
            "DATABASE_URL",
            "postgresql://coc_orders:${POSTGRES_ORDERS_PASSWORD:?x}@postgres:5432/coc",
        ),
        "ops-migrate: DATABASE_URL connects as coc_orders, not as ops's owner coc_ops",
    ),
    (
        "database password with a default",
        check_secrets,
        _env_all(
            "gdpr",
            "DATABASE_URL",
            "postgresql://coc_gdpr:${POSTGRES_GDPR_PASSWORD:-coc}@postgres:5432/coc",
        ),
        "secret ${POSTGRES_GDPR_PASSWORD} has the default 'coc'",
    ),
    (
        "database password written in the file",
        check_secrets,
        _env_all("gdpr", "DATABASE_URL", "postgresql://coc_gdpr:coc@postgres:5432/coc"),
        "URL with password 'coc'",
    ),
    (
        "database URL without password",
        check_secrets,
        _env_all("gdpr", "DATABASE_URL", "postgresql://coc_gdpr@postgres:5432/coc"),
        "URL with password None",
    ),
    (
        "superuser password with a default",
        check_secrets,
        _env("postgres", "POSTGRES_PASSWORD", "${POSTGRES_PASSWORD:-coc}"),
        "secret ${POSTGRES_PASSWORD} has the default 'coc'",
    ),
    (
        "role password may be empty",
        check_secrets,
        _env("postgres", "POSTGRES_OPS_PASSWORD", "${POSTGRES_OPS_PASSWORD?x}"),
        "secret ${POSTGRES_OPS_PASSWORD} may be empty",
    ),
    (
        "secret hard-coded",
        check_secrets,
        lambda d: [_env_all(s, "STAFF_TOKEN_SECRET", "x" * 40)(d) for s in SERVICE_NAMES],
        "STAFF_TOKEN_SECRET is 'xxxx",
    ),
    (
        "MinIO root password hard-coded",
        check_secrets,
        _env("minio", "MINIO_ROOT_PASSWORD", "coc-minio-secret"),
        "minio: MINIO_ROOT_PASSWORD is 'coc-minio-secret'",
    ),
    (
        "Redis password hard-coded",
        check_secrets,
        _set("redis.command", ["redis-server", "--requirepass", "hunter2hunter2"]),
        "--requirepass 'hunter2hunter2'",
    ),
    (
        "broker admin password with a default",
        check_secrets,
        _env(DEFINITIONS, ADMIN_PASSWORD, "${RABBITMQ_ADMIN_PASSWORD:-admin}"),
        "secret ${RABBITMQ_ADMIN_PASSWORD} has the default 'admin'",
    ),
    (
        "broker password with a default",
        check_secrets,
        _env_all(
            "orders",
            "RABBITMQ_URL",
            "amqp://coc-orders:${RABBITMQ_ORDERS_PASSWORD:-guest}@rabbitmq:5672//",
        ),
        "secret ${RABBITMQ_ORDERS_PASSWORD} has the default 'guest'",
    ),
    (
        "service as guest",
        check_broker_users,
        _env_all(
            "notifications",
            "RABBITMQ_URL",
            "amqp://guest:${RABBITMQ_NOTIFICATIONS_PASSWORD:?x}@rabbitmq:5672//",
        ),
        "connects as 'guest', not as notifications's own user 'coc-notifications' (an "
        "administrator)",
    ),
    (
        "services share the administrator",
        check_broker_users,
        lambda d: [
            _env_all(
                s, "RABBITMQ_URL", "amqp://coc-admin:${RABBITMQ_ADMIN_PASSWORD:?x}@rabbitmq:5672//"
            )(d)
            for s in SERVICE_NAMES
        ],
        "share the broker user coc-admin",
    ),
    (
        "support publishes as a service",
        check_broker_users,
        _env(
            "support",
            "RABBITMQ_URL",
            "amqp://coc-orders:${RABBITMQ_ORDERS_PASSWORD:?x}@rabbitmq:5672//",
        ),
        "support: RABBITMQ_URL connects as 'coc-orders'",
    ),
    (
        "broker user not defined",
        check_broker_users,
        _env(DEFINITIONS, "RABBITMQ_GDPR_PASSWORD", _DELETE),
        "no user coc-gdpr is defined",
    ),
    (
        "broker password from another variable",
        check_broker_users,
        _env_all(
            "payments",
            "RABBITMQ_URL",
            "amqp://coc-payments:${RABBITMQ_ORDERS_PASSWORD:?x}@rabbitmq:5672//",
        ),
        "payments-api: RABBITMQ_URL's password",
    ),
    (
        "definitions not loaded",
        check_broker,
        _set("rabbitmq.volumes", ["rabbitmq-data:/var/lib/rabbitmq"]),
        "no conf.d file sets load_definitions",
    ),
    (
        "definitions read from elsewhere",
        check_broker,
        _set(f"{DEFINITIONS}.volumes.[1]", "other-volume:/definitions"),
        "is not the volume rabbitmq-definitions writes to",
    ),
    (
        "broker starts before its definitions",
        check_broker,
        _set("rabbitmq.depends_on", _DELETE),
        "does not wait for rabbitmq-definitions",
    ),
    (
        "definitions without broker_users",
        check_broker,
        _set(f"{DEFINITIONS}.command", ["echo {} > /definitions/definitions.json"]),
        "does not run python -m coc_shared.broker_users definitions",
    ),
    (
        "default user still configured",
        check_broker,
        _env("rabbitmq", "RABBITMQ_DEFAULT_USER", "coc"),
        "sets RABBITMQ_DEFAULT_USER",
    ),
    (
        "Prometheus port not published",
        check_broker,
        _set("rabbitmq.ports", ["127.0.0.1:15672:15672"]),
        "Prometheus metrics port 15692",
    ),
    (
        "port published on every interface",
        check_published_locally,
        _set("mailpit.ports", ["8025:8025"]),
        "mailpit: publishes 8025 on every interface",
    ),
    (
        "Redis without password",
        check_redis,
        _set("redis.command", ["redis-server"]),
        "redis: no --requirepass",
    ),
    (
        "rate limits not in Redis",
        check_redis,
        _env_all("orders", "ORDERS_RATE_LIMIT_STORAGE", "memory://"),
        "ORDERS_RATE_LIMIT_STORAGE is not the redis container",
    ),
    (
        "checkouts' rate limits not in Redis",
        check_redis,
        _env_all("payments", "PAYMENTS_RATE_LIMIT_STORAGE", "memory://"),
        "payments-api: PAYMENTS_RATE_LIMIT_STORAGE is not the redis container",
    ),
    (
        "checkouts' rate limits without Redis' password",
        check_redis,
        _env_all("payments", "PAYMENTS_RATE_LIMIT_STORAGE", "redis://redis:6379/0"),
        "payments-api: PAYMENTS_RATE_LIMIT_STORAGE's password is not redis'",
    ),
    (
        "document key missing",
        check_required_variables,
        _env_all("orders", "ORDERS_DOCUMENT_KEY", _DELETE),
        "orders-api: ORDERS_DOCUMENT_KEY (declared without a default) is not set",
    ),
    (
        "provider secret may be left empty",
        check_required_variables,
        _env_all("payments", "PAYPAL_CLIENT_SECRET", "${PAYPAL_CLIENT_SECRET:-}"),
        "payments-worker: PAYPAL_CLIENT_SECRET (declared without a default) is "
        "'${PAYPAL_CLIENT_SECRET:-}', which compose may leave empty",
    ),
    (
        "public URL left at its loopback default",
        check_required_variables,
        _env_all("payments", "PAYMENTS_PUBLIC_URL", _DELETE),
        "PAYMENTS_PUBLIC_URL (its default 'http://127.0.0.1:8002' only works on one machine)",
    ),
    (
        "rate limits per process",
        check_required_variables,
        _env_all("orders", "ORDERS_RATE_LIMIT_STORAGE", "memory://"),
        "ORDERS_RATE_LIMIT_STORAGE (its default 'memory://' only works on one machine) is its "
        "default",
    ),
    (
        "proxy count unreadable",
        check_required_variables,
        _env_all("orders", "ORDERS_PROXY_COUNT", "two"),
        "orders-api: ORDERS_PROXY_COUNT is 'two': expected a whole number",
    ),
    (
        "checkouts' rate limits per process",
        check_required_variables,
        _env_all("payments", "PAYMENTS_RATE_LIMIT_STORAGE", _DELETE),
        "payments-api: PAYMENTS_RATE_LIMIT_STORAGE (its default 'memory://' only works on one "
        "machine) is not set",
    ),
    (
        "payments' proxy count unreadable",
        check_required_variables,
        _env_all("payments", "PAYMENTS_PROXY_COUNT", "two"),
        "payments-api: PAYMENTS_PROXY_COUNT is 'two': expected a whole number",
    ),
    (
        "another service's secret",
        check_required_variables,
        _env_all("orders", "PAYPAL_CLIENT_SECRET", "${PAYPAL_CLIENT_SECRET:?x}"),
        "orders-api: sets PAYPAL_CLIENT_SECRET, which orders does not use",
    ),
    (
        "customer secret where no customer is served",
        check_required_variables,
        _env_all("gdpr", "CUSTOMER_TOKEN_SECRET", "${CUSTOMER_TOKEN_SECRET:?x}"),
        "gdpr-api: sets CUSTOMER_TOKEN_SECRET, which gdpr does not use",
    ),
    (
        "customer secret missing where tokens are checked",
        check_required_variables,
        _env_all("payments", "CUSTOMER_TOKEN_SECRET", _DELETE),
        "payments-api: CUSTOMER_TOKEN_SECRET (declared without a default) is not set",
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
        "no init script",
    ),
    (
        "role password not passed to the init script",
        check_postgres_init,
        _env("postgres", "POSTGRES_GDPR_PASSWORD", _DELETE),
        "coc_gdpr's password comes from POSTGRES_GDPR_PASSWORD, which the postgres container "
        "does not set",
    ),
    (
        "bucket misnamed",
        check_bucket,
        _set("minio-init.command", ["mc mb --ignore-existing local/coc-documents"]),
        "does not create the bucket coc-orders-documents",
    ),
    (
        "orders writes to another bucket",
        check_bucket,
        _env_all("orders", "ORDERS_S3_BUCKET", "coc-documents"),
        "does not create the bucket coc-documents",
    ),
    (
        "orders writes to AWS",
        check_bucket,
        _env_all("orders", "ORDERS_S3_ENDPOINT_URL", _DELETE),
        "ORDERS_S3_ENDPOINT_URL is None",
    ),
    (
        "orders uses MinIO's root account",
        check_bucket,
        _env_all("orders", "ORDERS_S3_ACCESS_KEY_ID", "${MINIO_ROOT_USER:?x}"),
        "is not orders' ORDERS_S3_ACCESS_KEY_ID",
    ),
    (
        "ops rights to the wrong group",
        check_ops_grants,
        _set("ops-migrate.command.[5]", "coc_orders"),
        "--services-role is 'coc_orders'",
    ),
    (
        "ops staff rights to a service",
        check_ops_grants,
        _set("ops-migrate.command.[7]", "coc_payments"),
        "--staff-role is 'coc_payments', not the support tool's role 'coc_support'",
    ),
    (
        "migrate before the ops schema",
        check_depends_on,
        _set("gdpr-migrate.depends_on.ops-migrate", _DELETE),
        "gdpr-migrate: depends_on ops-migrate is missing",
    ),
    (
        "rate limits before Redis",
        check_depends_on,
        _set("orders-api.depends_on.redis", _DELETE),
        "orders-api: depends_on redis is missing",
    ),
    (
        "checkouts before Redis",
        check_depends_on,
        _set("payments-api.depends_on.redis", _DELETE),
        "payments-api: depends_on redis is missing",
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


# ----------------------------------------------------------------------------------------------
# the init scripts, broken one way at a time (their text, as the postgres image would run it)

INIT_BREAKAGES = [
    (
        "superuser role",
        "sql",
        r"(CREATE ROLE :\"gdpr_role\"[^;]*?)NOSUPERUSER",
        r"\1SUPERUSER",
        "postgres init: role coc_gdpr is SUPERUSER",
    ),
    (
        "role may create databases",
        "sql",
        r"(CREATE ROLE :\"orders_role\"[^;]*?)NOCREATEDB",
        r"\1CREATEDB",
        "postgres init: role coc_orders is CREATEDB",
    ),
    (
        "password written in the SQL",
        "sql",
        r"PASSWORD :'orders_password'",
        "PASSWORD 'coc'",
        "a password is written in the SQL (PASSWORD 'coc')",
    ),
    (
        "schema owned by another service's role",
        "sql",
        r'CREATE SCHEMA gdpr AUTHORIZATION :"gdpr_role"',
        'CREATE SCHEMA gdpr AUTHORIZATION :"orders_role"',
        "role coc_orders owns gdpr and also ['orders']",
    ),
    (
        "schema not created",
        "sql",
        r'CREATE SCHEMA notifications AUTHORIZATION :"notifications_role";',
        "",
        "postgres init scripts create schemas",
    ),
    (
        "password not passed to psql",
        "script",
        r'\n\s*-v gdpr_password="\$POSTGRES_GDPR_PASSWORD" \\',
        "",
        "postgres init: login role coc_gdpr gets no password from a variable",
    ),
    (
        "PUBLIC keeps its rights",
        "sql",
        r"REVOKE ALL ON SCHEMA public FROM PUBLIC;",
        "",
        "PUBLIC keeps its rights",
    ),
    (
        "a schema granted to everybody",
        "sql",
        r"COMMIT;",
        "GRANT USAGE ON SCHEMA orders TO PUBLIC;\nCOMMIT;",
        "GRANT USAGE ON SCHEMA orders TO PUBLIC",
    ),
    (
        "a service outside the ops users",
        "sql",
        r'(CREATE ROLE :"payments_role"[^;]*?) IN ROLE :"services_group"',
        r"\1",
        "postgres init: coc_payments (payments) may not use the ops schema",
    ),
]


@pytest.mark.parametrize(
    "part,pattern,replacement,expected",
    [b[1:] for b in INIT_BREAKAGES],
    ids=[b[0] for b in INIT_BREAKAGES],
)
def test_init_check_reports_a_broken_init_script(compose, part, pattern, replacement, expected):
    _folder, script, sql = read_init(compose)
    assert init_problems(compose, script, sql) == []
    if part == "sql":
        broken_sql, count = re.subn(pattern, replacement, sql, count=1)
        broken_script = script
    else:
        broken_script, count = re.subn(pattern, replacement, script, count=1)
        broken_sql = sql
    assert count == 1, f"the case's pattern no longer matches the {part}"
    problems = init_problems(compose, broken_script, broken_sql)
    assert any(expected in p for p in problems), problems


# ----------------------------------------------------------------------------------------------
# the required variables follow the code's declarations


def test_a_variable_the_code_adds_is_required_of_compose(compose):
    """A variable a service declares without a default (or with a default that only works on one
    machine) is reported until compose passes it: the check reads the declarations, not a list."""
    declared = dict(declared_by())
    declared["orders"] = (*declared["orders"], "ORDERS_NEW_KEY")
    declared["gdpr"] = (*declared.get("gdpr", ()), "GDPR_NEW_URL")
    variables = {
        **ENV_VARS,
        "ORDERS_NEW_KEY": Variable("ORDERS_NEW_KEY", None, "a new key"),
        "GDPR_NEW_URL": Variable("GDPR_NEW_URL", "http://localhost:9999", "a new address"),
    }
    problems = check_required_variables(copy.deepcopy(compose), declared, variables)
    assert "orders-api: ORDERS_NEW_KEY (declared without a default) is not set" in problems
    assert (
        "gdpr-worker: GDPR_NEW_URL (its default 'http://localhost:9999' only works on one "
        "machine) is not set"
    ) in problems
    assert not [p for p in problems if "NEW" not in p]


def test_what_each_service_needs_is_derived_from_the_declarations():
    declared = declared_by()
    needed = {s: needed_variables(s, declared, ENV_VARS) for s in SERVICE_NAMES}
    assert {"DATABASE_URL", "RABBITMQ_URL", "SERVICE_HOST", "STAFF_TOKEN_PUBLIC_KEY"} <= set(
        needed["gdpr"]
    )
    assert "CUSTOMER_TOKEN_SECRET" not in needed["gdpr"]
    assert {"ORDERS_DOCUMENT_KEY", "ORDERS_RATE_LIMIT_STORAGE", "CUSTOMER_TOKEN_SECRET"} <= set(
        needed["orders"]
    )
    assert {
        "SYSTEMPAY_SITE_ID",
        "PAYPAL_CLIENT_SECRET",
        "TRANSFER_IBAN",
        "PAYMENTS_RATE_LIMIT_STORAGE",
    } <= set(needed["payments"])
    assert not set(needed["orders"]) & set(declared["payments"])


def test_the_exemptions_name_declared_variables_without_default():
    for name in (*OPTIONAL_WITHOUT_DEFAULT, *SCOPED_SHARED, *KEPT_OUT):
        assert name in ENV_VARS, f"{name} is no longer declared: drop it from the test's lists"
    for name in OPTIONAL_WITHOUT_DEFAULT:
        assert ENV_VARS[name].default is None, f"{name} has a default now: drop its exemption"


# ----------------------------------------------------------------------------------------------
# deploy/.env.example and deploy/generate-env.sh against compose and the code

ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
GENERATOR = ROOT / "deploy" / "generate-env.sh"
MAY_STAY_EMPTY = {"LOG_LEVEL", "PAYPAL_API_URL", "TRANSFER_BENEFICIARY"}
# What an operator fills in (valid values of the kind each setting expects).
TRIAL_SETTINGS = {
    "ORDERS_PROXY_COUNT": "1",
    "PAYMENTS_PROXY_COUNT": "1",
    "CONSOLE_PROXY_COUNT": "1",
    "ORDERS_PAYMENT_URL": "https://api.example.com/payments/v1/payments/{order_id}/checkout",
    "ORDERS_EMAIL_CONFIRMATION_URL": (
        "https://api.example.com/orders/v1/accounts/email-confirmation#token={token}"
    ),
    "PAYMENTS_PUBLIC_URL": "https://api.example.com/payments",
    "PAYMENTS_RETURN_URL": "https://shop.example.com/orders/{order_id}/payment",
    "SYSTEMPAY_SITE_ID": "12345678",
    "SYSTEMPAY_MODE": "TEST",
    "SYSTEMPAY_TEST_KEY": "test-key-from-the-back-office",
    "SYSTEMPAY_PRODUCTION_KEY": "production-key-from-the-back-office",
    "PAYPAL_CLIENT_ID": "paypal-client-id",
    "PAYPAL_CLIENT_SECRET": "paypal-client-secret",
    "PAYPAL_WEBHOOK_ID": "WH-1",
    "TRANSFER_IBAN": "FR76 3000 6000 0112 3456 7890 189",
    "TRANSFER_BIC": "AGRIFRPP",
    "QONTO_WEBHOOK_SECRET": "qonto-webhook-secret",
    "ORDERS_CERTIFICATE_URL": (
        "https://api.example.com/supplier-gateway/v1/orders/{order_id}/certificate"
    ),
    "ORDERS_INVOICES_URL": "https://api.example.com/payments/v1/orders/{order_id}/invoices",
    "SUPPLIER_GATEWAY_DOCUMENT_URL": (
        "https://api.example.com/orders/v1/supplier-documents/{document_id}"
    ),
    "SUPPLIER_GATEWAY_LAPOSTE_KEY": "laposte-developer-key",
    "NOTIFICATIONS_MAIL_FROM": "COC <commandes@example.com>",
    "NOTIFICATIONS_STOREFRONT_URL": "https://shop.example.com",
    "NOTIFICATIONS_PUBLIC_URL": "https://api.example.com/notifications",
    "SYSTEMPAY_REST_KEY": "testpassword_from-the-back-office",
    "SELLER_NAME": "COC SAS",
    "SELLER_STREET": "1 rue de la Paix",
    "SELLER_POSTAL_CODE": "75002",
    "SELLER_CITY": "Paris",
    "SELLER_SIREN": "732829320",
    "SELLER_VAT_NUMBER": "FR44732829320",
    "SELLER_LEGAL_MENTIONS": "SAS au capital de 10 000 € - RCS Paris 732 829 320",
}


class Missing(Exception):
    """Compose refuses to start: a required variable is unset or empty."""


def resolve(text: str, env: dict[str, str]) -> str:
    """``text`` as compose substitutes it from ``env`` (the .env file), raising ``Missing`` where
    compose would refuse to start."""

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1) or m.group(4), m.group(2), m.group(3)
        value = env.get(name)
        if op == ":?" and not value or op == "?" and value is None:
            raise Missing(name)
        if op == ":-" and not value or op == "-" and value is None:
            return arg
        return value or ""

    return "$".join(_VARIABLE.sub(one, part) for part in text.split("$$"))


def read_env_file(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


def generated_env() -> tuple[dict[str, str], str]:
    """(deploy/generate-env.sh's .env, what it printed on stderr)."""
    done = subprocess.run(
        ["sh", str(GENERATOR)], capture_output=True, text=True, timeout=60, check=True
    )
    return read_env_file(done.stdout), done.stderr


def resolved(compose: dict, env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Every container's environment as compose would give it from ``env`` (``Missing`` where it
    would refuse to start)."""
    for _where, text in strings_in(compose):
        resolve(text, env)
    return {
        name: {k: resolve(v or "", env) for k, v in environment_of(container).items()}
        for name, container in services_of(compose).items()
    }


def test_env_example_names_exactly_the_host_variables_compose_uses(compose):
    example = set(read_env_file(ENV_EXAMPLE.read_text()))
    used = {n for _w, text in strings_in(compose) for n in interpolated_names(text)}
    assert example == used, (
        f"only in .env.example: {sorted(example - used)}; only in compose: {sorted(used - example)}"
    )


def test_compose_refuses_to_start_without_each_variable(compose):
    """Each variable of .env.example but the three that may stay empty stops compose when empty
    (${NAME:?}); those three do not."""
    env, _ = generated_env()
    env.update(TRIAL_SETTINGS)
    for name in sorted(env):
        emptied = {**env, name: ""}
        if name in MAY_STAY_EMPTY:
            resolved(compose, emptied)
            continue
        with pytest.raises(Missing) as refused:
            resolved(compose, emptied)
        assert refused.value.args[0] == name
    with pytest.raises(Missing):
        resolved(compose, {k: v for k, v in env.items() if k not in TRIAL_SETTINGS})


def test_the_generated_env_is_what_the_code_and_the_servers_accept(compose):
    env, printed = generated_env()
    env.update(TRIAL_SETTINGS)
    environments = resolved(compose, env)
    for name in (
        "orders-api",
        "payments-worker",
        "gdpr-migrate",
        "support",
        "ops-migrate",
        "console-api",
    ):
        container_env = environments[name]
        load([ENV_VARS[v] for v in container_env if v in ENV_VARS], overrides=container_env)
    for name, value in env.items():
        if name.endswith("_PASSWORD") or name in ("ORDERS_S3_SECRET_ACCESS_KEY", "REDIS_PASSWORD"):
            # 10-roles.sh and broker_users want 16 characters; they go into URLs unescaped
            assert len(value) >= 16 and value.isalnum(), name
    assert 8 <= len(env["ORDERS_S3_SECRET_ACCESS_KEY"]) <= 40  # MinIO's limits
    private = re.search(r"^STAFF_TOKEN_PRIVATE_KEY=(\S+)$", printed, flags=re.M).group(1)
    assert "STAFF_TOKEN_PRIVATE_KEY" not in env
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private)).public_key()
    assert base64.b64encode(public.public_bytes_raw()).decode() == env["STAFF_TOKEN_PUBLIC_KEY"]
    again, _ = generated_env()
    assert again["POSTGRES_PASSWORD"] != env["POSTGRES_PASSWORD"]
