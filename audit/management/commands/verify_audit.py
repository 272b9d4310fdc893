"""Verify the audit trail's hash chain: exit 0 when intact, 1 naming the first broken link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import chain


class Command(BaseCommand):
    help = "Recompute the audit trail's hash chain and name its first broken link (exit 1 when broken)"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--checkpoint", type=Path, metavar="FILE",
                            help="a checkpoint downloaded from /audit/checkpoint.json: the chain must still "
                                 "hold its head (the same hash at the same seq)")
        parser.add_argument("--since", type=int, metavar="SEQ",
                            help="check only the events from this seq on (linked to the one before it); "
                                 "a partial check neither raises nor clears the alarm")

    def handle(self, *args: Any, **options: Any) -> None:
        result = chain.verify(since_seq=options["since"])
        if options["since"] is None:
            chain.record_check(result)  # a full check raises or clears the admins' alarm, as the schedule's does
        if not result.ok:
            raise CommandError(str(result), returncode=1)
        if options["checkpoint"] is not None:
            try:
                data = json.loads(options["checkpoint"].read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read the checkpoint: {exc}", returncode=1) from exc
            try:
                chain.check_checkpoint(data)
            except chain.CheckpointError as exc:
                # A consistent chain that contradicts a signed checkpoint was rewritten: raise the alarm.
                seq = data.get("seq") if isinstance(data, dict) else None
                chain.record_check(chain.Result(ok=False, count=result.count,
                                                broken_seq=seq if isinstance(seq, int) else None,
                                                problem=f"checkpoint failed: {exc}"))
                raise CommandError(f"checkpoint failed: {exc}", returncode=1) from exc
            self.stdout.write(f"checkpoint holds: seq {data['seq']} has hash {data['hash']}")
        self.stdout.write(str(result))
