"""Service-specific commands of ``coc-notifications`` (``ServiceDefinition.commands``)::

    coc-notifications campaign --template newsletter --rate 5 --reason "December news"

Staff (an admin's token in ``STAFF_TOKEN``, for the notifications service) send one marketing
campaign to the contacts whose consent is given and not withdrawn, at most ``--rate`` mails per
second; the sender loop delivers it. Recorded in the support actions log. Prints a JSON summary.
Exit codes: 0 started, 1 refused (template, rate or settings), 2 no or a bad staff token.
"""

from __future__ import annotations

import argparse
import json
import sys

from coc_shared.config import env
from coc_shared.tokens import TokenError, verify_staff_token

from ..domain.model import MARKETING_TEMPLATES


def campaign(runtime, argv: list[str]) -> int:
    from ..service_layer.marketing import CampaignRefused, start_campaign

    parser = argparse.ArgumentParser(prog="coc-notifications campaign")
    parser.add_argument("--template", required=True, choices=MARKETING_TEMPLATES)
    parser.add_argument("--rate", type=float, default=5.0, help="mails per second, at most")
    parser.add_argument("--reason", required=True)
    args = parser.parse_args(argv)
    try:
        actor = verify_staff_token(
            runtime.settings.staff_token_public_key,
            env("STAFF_TOKEN"),
            audience=runtime.settings.service,
            roles=("admin",),
            revoked=runtime.parking.token_revoked,
        )
    except TokenError as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    try:
        started = start_campaign(runtime, args.template, args.rate, actor.name)
    except CampaignRefused as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 1
    summary = {
        "campaign_id": started.id,
        "template": started.template,
        "recipients": started.recipients,
        "per_second": started.per_second,
    }
    runtime.parking.record_action(actor, "start_campaign", started.id, args.reason, summary)
    print(json.dumps(summary, indent=2))
    return 0


COMMANDS = {"campaign": campaign}
