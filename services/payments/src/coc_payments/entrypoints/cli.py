"""``coc-payments migrate | api | worker | consume | relay`` (the shared runtime's commands), and
the service's own ``import-camt053 FILE`` (``entrypoints.commands``, declared in the service's
``ServiceDefinition.commands``)."""

from __future__ import annotations

import sys

import coc_shared.service

from ..service import definition


def main(argv: list[str] | None = None) -> None:
    sys.exit(coc_shared.service.main(definition, argv))


if __name__ == "__main__":
    main()
