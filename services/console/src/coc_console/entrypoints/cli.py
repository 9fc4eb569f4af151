"""``coc-console migrate | api | create-admin | create-staff | first-run``."""

from __future__ import annotations

import sys

import coc_shared.service

from ..service import definition


def main() -> None:
    sys.exit(coc_shared.service.main(definition))


if __name__ == "__main__":
    main()
