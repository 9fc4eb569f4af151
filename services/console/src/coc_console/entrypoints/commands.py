"""``coc-console create-admin | create-staff | first-run``: staff accounts from the command line
(the console has no sign-up page)."""

from __future__ import annotations

import argparse
import os
import secrets
import sys

from coc_shared.config import env

from ..domain.model import InputError
from ..service_layer import auth
from . import order_checks_commands


def _print_new(new: auth.NewStaff, password: str | None, url: str) -> None:
    print(f"staff member {new.staff.name} ({new.staff.role}) created")
    if password:
        print(f"  password:    {password}")
    print(f"  TOTP secret: {new.totp_secret}   (type it into an authenticator app, or scan:)")
    print(f"  otpauth URI: {new.totp_uri}")
    print(f"  log in at    {url}/login")


def _url(runtime) -> str:
    return f"http://{runtime.settings.http_host}:{runtime.settings.http_port}"


def create_staff(runtime, argv: list[str], default_role: str = "support") -> int:
    parser = argparse.ArgumentParser(prog="coc-console create-staff")
    parser.add_argument("--name", required=True)
    parser.add_argument("--role", default=default_role, choices=["support", "admin"])
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else one is made and printed)",
    )
    args = parser.parse_args(argv)
    made = not args.password_stdin
    password = secrets.token_urlsafe(15) if made else sys.stdin.readline().rstrip("\n")
    try:
        new = auth.create_staff(runtime, args.name, args.role, password)
    except InputError as exc:
        for field, message in exc.fields.items():
            print(f"{field}: {message}", file=sys.stderr)
        return 2
    _print_new(new, password if made else None, _url(runtime))
    return 0


def create_admin(runtime, argv: list[str]) -> int:
    return create_staff(runtime, argv, default_role="admin")


def first_run(runtime, argv: list[str]) -> int:
    """``make run``: a first admin when there is no staff account yet (its password and TOTP
    secret kept in RUN_DATA_DIR/console-admin.txt, mode 600), and how to log in."""
    if auth.staff_count(runtime) > 0:
        print(f"  support console: log in at {_url(runtime)}/login ", end="")
        print("(`coc-console create-staff --name you` adds an account)")
        return 0
    password = secrets.token_urlsafe(15)
    new = auth.create_staff(runtime, "admin", "admin", password, by="make run")
    data_dir = os.path.abspath(env("RUN_DATA_DIR"))
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, "console-admin.txt")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"name: admin\npassword: {password}\ntotp_secret: {new.totp_secret}\n")
        f.write(f"otpauth_uri: {new.totp_uri}\n")
    print("  support console: first run, ", end="")
    _print_new(new, password, _url(runtime))
    print(f'  (kept in {path}; a code now: python -c "import pyotp; ', end="")
    print(f"print(pyotp.TOTP('{new.totp_secret}').now())\")")
    return 0


COMMANDS = {
    "create-admin": create_admin,
    "create-staff": create_staff,
    "first-run": first_run,
    **order_checks_commands.COMMANDS,
}
