"""``coc-gdpr`` commands besides the shared ones: ``purge`` starts a purge run of the retention
schedule now (every service applies the ends of its own data and reports; see ``runs``), ``runs``
lists the last ones with each service's report."""

from __future__ import annotations

import json

from ..service_layer import purges


def purge(runtime, _argv: list[str]) -> int:
    print(json.dumps({"run_id": purges.start_purge_run(runtime, "command")}))
    return 0


def runs(runtime, _argv: list[str]) -> int:
    print(json.dumps(purges.recent_runs(runtime), default=str, indent=2))
    return 0


COMMANDS = {"purge": purge, "runs": runs}
