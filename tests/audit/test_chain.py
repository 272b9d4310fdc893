"""The audit trail's hash chain: kept by the database for every writer, recomputed by `verify`, which
names the first event that was altered or removed behind the append-only trigger."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from audit import chain
from audit.models import GENESIS_HASH, AuditEvent, ChainHead
from audit.writer import Entry, record, record_many
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.audit import tampering
from tests.factories import make_item, make_policy


def _history(admin_user) -> None:
    """Events from every writer: the ORM, one INSERT for many, and the reasoner's INSERT ... SELECT."""
    version = make_policy(actor=admin_user)  # through the policy services (record)
    for content in ("buy now, limited offer", "see you at lunch", "limited offer, buy now"):
        make_item(versions=[version], content=content)  # the ingest path (record_many)
    assert run_once(ScriptedEngine(), "w1") == 3  # claim and store: INSERT ... SELECT
    record(actor=admin_user, action="note.added", obj=version, after={"note": "émoji ✓, \"quotes\" and \\"})
    record_many(actor=None, actor_name="system:test", object_type=version,
                entries=[Entry(action="bulk.one", object_id="1"), Entry(action="bulk.two", object_id="2")])


def _seqs(**filters) -> list[int]:
    return list(AuditEvent.objects.filter(**filters).order_by("id").values_list("seq", flat=True))


@pytest.mark.django_db
def test_a_history_written_by_every_writer_verifies(admin_user):
    _history(admin_user)

    result = chain.verify()

    count = AuditEvent.objects.count()
    assert result.ok, result
    assert result.count == count and result.head_seq == count
    assert sorted(_seqs()) == list(range(1, count + 1))
    last = AuditEvent.objects.get(seq=count)
    assert result.head_hash == last.hash == ChainHead.objects.get().hash
    assert AuditEvent.objects.get(seq=1).prev_hash == GENESIS_HASH
    assert str(result) == f"audit chain intact: {count} events, head {last.hash}"


@pytest.mark.django_db
def test_each_event_links_to_the_one_before_it(admin_user):
    _history(admin_user)

    events = list(AuditEvent.objects.order_by("seq").values_list("prev_hash", "hash"))

    assert all(prev == before for (prev, _), (_, before) in zip(events[1:], events, strict=False))
    assert len({h for _, h in events}) == len(events)


@pytest.mark.django_db
def test_a_multi_row_insert_gets_consecutive_seqs_in_its_order(admin_user):
    make_policy(actor=admin_user)
    entries = [Entry(action=f"bulk.{n}", object_id=str(n)) for n in range(30)]

    record_many(actor=None, actor_name="system:test", object_type="test.thing", entries=entries)

    rows = list(AuditEvent.objects.filter(object_type="test.thing").order_by("seq").values_list("seq", "object_id"))
    assert [object_id for _, object_id in rows] == [str(n) for n in range(30)]
    assert [seq for seq, _ in rows] == list(range(rows[0][0], rows[0][0] + 30))


@pytest.mark.django_db
@pytest.mark.timeout(120)
def test_one_large_insert_into_a_table_analysed_while_empty_checks_each_link_by_the_index():
    """The planner believes an ANALYZEd-empty table stays empty until the next ANALYZE, so the chain
    trigger's link check planned a sequential scan for every row of a large INSERT, each over the rows
    the statement had added so far: 30,000 events did not finish in 200 s. The trigger keeps sequential
    scans off (audit 0005), so each row is one lookup on the seq index (about 2 s for all of them)."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {AuditEvent._meta.db_table}")
    record_many(actor=None, actor_name="system:test", object_type="test.thing",
                entries=[Entry(action="thing.done", object_id=str(n)) for n in range(30_000)])
    assert AuditEvent.objects.filter(object_type="test.thing").count() == 30_000
    assert chain.verify().ok


@pytest.mark.django_db
def test_the_reasoners_events_are_chained_in_the_order_of_its_statements():
    version = make_policy()
    items = [make_item(versions=[version], content=f"message {n}") for n in range(5)]
    run_once(ScriptedEngine(), "w1")

    ids = [str(item.classifications.get().pk) for item in items]
    started = list(AuditEvent.objects.filter(action="classification.started").order_by("seq")
                   .values_list("seq", "object_id"))
    assert [object_id for _, object_id in started] == sorted(ids, key=int)
    assert [seq for seq, _ in started] == list(range(started[0][0], started[0][0] + 5))
    assert chain.verify().ok


@pytest.mark.django_db
def test_an_event_altered_behind_the_trigger_is_named_by_its_seq(admin_user):
    _history(admin_user)
    target = AuditEvent.objects.filter(action="classification.done").order_by("seq").first()

    tampering.alter(target.seq, verdict="fine")

    result = chain.verify()
    assert not result.ok
    assert (result.broken_seq, result.broken_id) == (target.seq, target.pk)
    assert "content does not match its hash" in result.problem
    assert str(result).startswith(f"audit chain broken at seq {target.seq} (event id {target.pk})")


@pytest.mark.django_db
def test_a_deleted_event_is_named_as_a_gap(admin_user):
    _history(admin_user)
    count = AuditEvent.objects.count()

    tampering.delete(4)

    result = chain.verify()
    assert not result.ok
    assert result.broken_seq == 5 and "follows seq 3: seq 4 missing" in result.problem
    assert result.count == count - 1


@pytest.mark.django_db
def test_deleting_the_first_or_the_newest_events_is_noticed(admin_user):
    _history(admin_user)
    count = AuditEvent.objects.count()

    tampering.delete(count)
    newest = chain.verify()
    tampering.delete(1)
    first = chain.verify()

    assert not newest.ok and newest.broken_seq == count and "the newest events are missing" in newest.problem
    assert not first.ok and first.broken_seq == 2 and "the chain starts at seq 2" in first.problem


@pytest.mark.django_db
def test_a_change_to_the_links_themselves_is_noticed(admin_user):
    _history(admin_user)

    tampering.behind_the_trigger((f"UPDATE {tampering.TABLE} SET prev_hash = %s WHERE seq = 3", [GENESIS_HASH]))

    result = chain.verify()
    assert result.broken_seq == 3 and "prev_hash is not the hash of seq 2" in result.problem


@pytest.mark.django_db
def test_verify_since_a_seq_checks_only_the_later_events(admin_user):
    _history(admin_user)
    tampering.alter(2, verdict="fine")

    assert chain.verify(since_seq=4).ok
    assert chain.verify(since_seq=2).broken_seq == 2
    assert chain.verify(since_seq=4).count == AuditEvent.objects.count() - 3


@pytest.mark.django_db
def test_an_empty_trail_verifies():
    result = chain.verify()
    assert result.ok and result.count == AuditEvent.objects.count()


@pytest.mark.django_db
def test_verify_audit_exits_0_when_intact_and_1_naming_the_broken_event(admin_user, capsys):
    _history(admin_user)
    count = AuditEvent.objects.count()

    call_command("verify_audit")
    assert f"audit chain intact: {count} events, head " in capsys.readouterr().out

    tampering.alter(3, verdict="fine")
    with pytest.raises(CommandError) as broken:
        call_command("verify_audit")
    assert broken.value.returncode == 1
    assert f"audit chain broken at seq 3 (event id {AuditEvent.objects.get(seq=3).pk})" in str(broken.value)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_leave_one_contiguous_chain():
    writers, calls, size = 6, 5, 20
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(n: int) -> None:
        try:
            start.wait(timeout=30)
            for call in range(calls):
                with transaction.atomic():  # each call in its own transaction, as a service makes it
                    record_many(actor=None, actor_name=f"system:writer-{n}", object_type="test.thing",
                                entries=[Entry(action=f"w{n}.c{call}", object_id=str(i)) for i in range(size)])
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not failures
    result = chain.verify()
    total = writers * calls * size
    assert result.ok and result.count == total and result.head_seq == total
    assert sorted(_seqs()) == list(range(1, total + 1))
    # A transaction holds the head until it commits: each call's events are consecutive, in order.
    for n in range(writers):
        for call in range(calls):
            seqs = list(AuditEvent.objects.filter(action=f"w{n}.c{call}").order_by("seq")
                        .values_list("seq", "object_id"))
            assert [object_id for _, object_id in seqs] == [str(i) for i in range(size)]
            assert seqs[-1][0] - seqs[0][0] == size - 1


@pytest.mark.django_db
def test_events_rolled_back_with_a_savepoint_leave_no_hole_in_the_chain():
    make_policy()
    with transaction.atomic():
        record_many(actor=None, object_type="test.thing", entries=[Entry(action="kept.one", object_id="1")])
        with pytest.raises(RuntimeError), transaction.atomic():
            record_many(actor=None, object_type="test.thing", entries=[Entry(action="undone", object_id="2")])
            raise RuntimeError("the change failed")
        record_many(actor=None, object_type="test.thing", entries=[Entry(action="kept.two", object_id="3")])

    kept = list(AuditEvent.objects.filter(action__startswith="kept").order_by("seq").values_list("seq", flat=True))
    assert kept[1] == kept[0] + 1
    assert chain.verify().ok
