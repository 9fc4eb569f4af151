"""``coc-orders`` commands besides the shared ones: ``report-stuck`` runs the stuck-order
detector now (what the worker's ``stuck`` loop does on its schedule) and prints each order it
reported, one JSON line each."""

from __future__ import annotations

import json

from ..service_layer import stuck


def report_stuck(runtime, _argv: list[str]) -> int:
    for found in stuck.report_stuck(runtime, runtime.config.deadlines):
        print(json.dumps(found.event_data()))
    return 0


COMMANDS = {"report-stuck": report_stuck}
