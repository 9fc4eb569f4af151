"""Completes the definitions of ``python -m coc_shared.broker_users definitions`` (read on stdin)
into the file the broker loads at its start, written atomically:

* the virtual host(s) the permissions name: a broker loading definitions at boot creates no default
  virtual host (and no default user);
* the administrator of the management UI, ``coc-admin`` (``--admin-user``), password from
  ``RABBITMQ_ADMIN_PASSWORD`` (16 characters at least), tag ``administrator`` and no permission on
  any virtual host: it watches queues and users, it publishes and consumes nothing.

Run by docker-compose's ``rabbitmq-definitions`` one-shot::

    python -m coc_shared.broker_users definitions \\
        | python /deploy/complete_definitions.py --output /definitions/definitions.json

Exits non-zero, writing nothing, when its input is not definitions (e.g. broker_users refused to
run for a missing password) or the administrator's password is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from coc_shared.broker_users import HASHING, password_hash

ADMIN_PASSWORD = "RABBITMQ_ADMIN_PASSWORD"


def complete(definitions: dict, admin_user: str, admin_password: str) -> dict:
    vhosts = sorted({p["vhost"] for p in definitions.get("permissions", [])} or {"/"})
    users = [u for u in definitions.get("users", []) if u["name"] != admin_user]
    users.append(
        {
            "name": admin_user,
            "password_hash": password_hash(admin_password),
            "hashing_algorithm": HASHING,
            "tags": "administrator",
        }
    )
    return {
        **definitions,
        "vhosts": [{"name": name} for name in vhosts],
        "users": users,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="complete_definitions.py")
    parser.add_argument("--output", required=True, help="file the broker loads")
    parser.add_argument("--admin-user", default="coc-admin")
    args = parser.parse_args(argv)
    password = os.environ.get(ADMIN_PASSWORD, "")
    if len(password) < 16:
        print(f"set {ADMIN_PASSWORD} (16 characters at least)", file=sys.stderr)
        return 2
    try:
        definitions = json.load(sys.stdin)
        if not definitions.get("users") or not definitions.get("permissions"):
            raise ValueError("no users or permissions")
    except ValueError as exc:
        print(f"no definitions on stdin ({exc}): nothing written", file=sys.stderr)
        return 2
    completed = complete(definitions, args.admin_user, password)
    partial = args.output + ".new"
    with open(partial, "w") as handle:
        json.dump(completed, handle, indent=2)
        handle.write("\n")
    os.chmod(partial, 0o644)  # the broker runs as its own user
    os.replace(partial, args.output)
    vhosts = [v["name"] for v in completed["vhosts"]]
    print(f"{args.output}: {len(completed['users'])} users on {vhosts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
