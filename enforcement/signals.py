"""What the enforcement app tells the layers above it, sent once the change has committed (through
`console.signals.send_on_commit`, so a failing receiver is logged and stops no other).

    appeal_decided(appeal_id)   a moderator upheld or reversed an appeal (received by `api`, which
                                tells the platform by webhook)
"""

from __future__ import annotations

from django.dispatch import Signal

appeal_decided = Signal()
