"""Signed checkpoints of the chain's head: they hold a later chain to its past, so a history rewritten
and re-hashed from an older event onwards (which `verify` alone accepts) is still caught."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit import chain
from audit.models import AuditEvent, ChainCheck
from audit.writer import Entry, record_many
from tests.audit import tampering
from tests.factories import make_policy

pytestmark = pytest.mark.django_db


def _events(n: int, action: str = "thing.done") -> None:
    record_many(actor=None, actor_name="system:test", object_type="test.thing",
                entries=[Entry(action=action, object_id=str(i), after={"n": i}) for i in range(n)])


def _checkpoint() -> dict:
    make_policy()
    _events(5)
    return chain.checkpoint(chain.verify())


def test_a_checkpoint_names_the_head_and_still_holds_after_more_events():
    data = _checkpoint()
    head = AuditEvent.objects.order_by("-seq").first()

    _events(3, "later.done")

    assert (data["seq"], data["hash"], data["count"]) == (head.seq, head.hash, AuditEvent.objects.count() - 3)
    assert set(data) == {"seq", "hash", "count", "at", "signature"}
    chain.check_checkpoint(data)  # does not raise


def test_a_history_rewritten_and_rehashed_before_the_checkpoint_fails_it():
    data = _checkpoint()

    tampering.rewrite_from(2, note="never happened")

    assert chain.verify().ok  # consistent: the chain alone cannot tell
    with pytest.raises(chain.CheckpointError, match=f"seq {data['seq']} has hash .* the history up to it was"):
        chain.check_checkpoint(data)


def test_an_emptied_trail_fails_the_checkpoint():
    data = _checkpoint()

    tampering.behind_the_trigger((f"TRUNCATE {tampering.TABLE}, audit_chainhead", None))

    assert chain.verify().ok and chain.verify().count == 0
    with pytest.raises(chain.CheckpointError, match=f"no longer has seq {data['seq']}"):
        chain.check_checkpoint(data)


@pytest.mark.parametrize("change", [{"seq": 1}, {"hash": "0" * 64}, {"count": 0}, {"at": "2020-01-01T00:00:00"},
                                    {"signature": "f" * 64}])
def test_a_checkpoint_changed_after_signing_is_refused(change):
    data = {**_checkpoint(), **change}

    with pytest.raises(chain.CheckpointError, match="signature is not valid"):
        chain.check_checkpoint(data)


def test_a_checkpoint_signed_with_another_secret_key_is_refused(settings):
    data = _checkpoint()
    settings.SECRET_KEY = "another-console-entirely"

    with pytest.raises(chain.CheckpointError, match="signature is not valid"):
        chain.check_checkpoint(data)


def test_a_broken_chain_gets_no_checkpoint():
    make_policy()
    tampering.alter(1, note="x")

    with pytest.raises(chain.CheckpointError, match="no checkpoint of a broken chain"):
        chain.checkpoint(chain.verify())


def test_verify_audit_checks_a_checkpoint_file(tmp_path, capsys):
    data = _checkpoint()
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps(data))

    call_command("verify_audit", "--checkpoint", str(path))
    out = capsys.readouterr().out
    assert f"checkpoint holds: seq {data['seq']} has hash {data['hash']}" in out
    assert "audit chain intact:" in out

    tampering.rewrite_from(3, note="never happened")
    with pytest.raises(CommandError, match="checkpoint failed: seq") as failed:
        call_command("verify_audit", "--checkpoint", str(path))
    assert failed.value.returncode == 1
    assert ChainCheck.objects.latest_failure().broken_seq == data["seq"]  # the alarm is raised


def test_verify_audit_refuses_an_unreadable_checkpoint(tmp_path):
    make_policy()
    path = tmp_path / "checkpoint.json"
    path.write_text("{not json")

    with pytest.raises(CommandError, match="cannot read the checkpoint"):
        call_command("verify_audit", "--checkpoint", str(path))
    path.write_text(json.dumps({"seq": 1}))
    with pytest.raises(CommandError, match="a checkpoint has the fields"):
        call_command("verify_audit", "--checkpoint", str(path))
