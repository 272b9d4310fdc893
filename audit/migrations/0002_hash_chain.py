"""The audit trail becomes a hash chain, kept by the database so that every writer is covered: the ORM
(`record`), `record_many` and the reasoner's INSERT ... SELECT statements alike.

- `audit_event_digest(...)`: THE definition of an event's hash, used by the trigger and by
  `audit.chain.verify`. sha256 over the UTF-8 text of a JSON array of: the previous event's hash, seq,
  actor_id, actor_name, action, object_type, object_id, object_repr, before::text, after::text and
  created_at in UTC ("YYYY-MM-DDTHH:MM:SS.ffffffZ"). jsonb_build_array's text is `json.dumps(values,
  ensure_ascii=False)` in Python, so the chain can be checked outside the database from an export.
- `audit_chainhead`: one row, the last link (seq and hash).
- `audit_event_chain`: BEFORE INSERT, per row. A transaction's first event locks the head (SELECT ...
  FOR UPDATE), so a second writer waits until the first commits or rolls back, and seqs follow commit
  order with no gaps; it numbers the row and links it, and keeps the new link in a transaction-local
  setting (`audit.chain_head`, tagged with the transaction id) for the next row. A multi-row INSERT fires
  it row by row in insertion order, so an INSERT ... SELECT ... ORDER BY gets consecutive seqs in that
  order. `audit_event_chain_head` (AFTER INSERT, per statement) moves the head row to the last link.

Existing events are chained in id order (the append-only trigger is set aside for that one UPDATE).
"""

from django.db import migrations, models

DIGEST = """
CREATE OR REPLACE FUNCTION audit_event_digest(
    prev_hash text, seq bigint, actor_id bigint, actor_name text, action text, object_type text,
    object_id text, object_repr text, before jsonb, after jsonb, created_at timestamptz
) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(jsonb_build_array(
        prev_hash, seq, actor_id, actor_name, action, object_type, object_id, object_repr,
        before::text, after::text,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    )::text, 'UTF8')), 'hex')
$$;
"""

CHAIN = """
CREATE OR REPLACE FUNCTION audit_event_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tx text := pg_current_xact_id()::text;
    state text := current_setting('audit.chain_head', true);
    head_seq bigint;
    head_hash text;
BEGIN
    IF state IS NOT NULL AND split_part(state, ':', 1) = tx THEN
        -- This transaction already holds the head: follow the link it last made.
        head_seq := split_part(state, ':', 2)::bigint;
        head_hash := split_part(state, ':', 3);
    ELSE
        SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_chainhead AS h WHERE h.id = 1 FOR UPDATE;
        IF NOT FOUND THEN
            -- An empty chain (a fresh or flushed database). With events but no head, the first event's
            -- seq is taken again and the unique constraint refuses the INSERT: loud, not a second chain.
            INSERT INTO audit_chainhead (id, seq, hash) VALUES (1, 0, repeat('0', 64)) ON CONFLICT (id) DO NOTHING;
            SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_chainhead AS h WHERE h.id = 1 FOR UPDATE;
        END IF;
    END IF;
    NEW.seq := head_seq + 1;
    NEW.prev_hash := head_hash;
    NEW.hash := audit_event_digest(NEW.prev_hash, NEW.seq, NEW.actor_id, NEW.actor_name, NEW.action,
                                   NEW.object_type, NEW.object_id, NEW.object_repr, NEW.before, NEW.after,
                                   NEW.created_at);
    -- Transaction-local, so a rollback (to a savepoint too) forgets it along with the rows and the lock.
    PERFORM set_config('audit.chain_head', tx || ':' || NEW.seq || ':' || NEW.hash, true);
    RETURN NEW;
END;
$$;

-- The head row is moved once per statement, not per event: updating one row 200,000 times in one
-- transaction leaves a chain of row versions that every later lookup walks (quadratic).
CREATE OR REPLACE FUNCTION audit_event_chain_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    state text := current_setting('audit.chain_head', true);
BEGIN
    IF state IS NOT NULL AND split_part(state, ':', 1) = pg_current_xact_id()::text THEN
        UPDATE audit_chainhead SET seq = split_part(state, ':', 2)::bigint, hash = split_part(state, ':', 3)
        WHERE id = 1 AND seq <> split_part(state, ':', 2)::bigint;
    END IF;
    RETURN NULL;
END;
$$;
"""

FORWARD = DIGEST + CHAIN + """
ALTER TABLE console_auditevent
    ADD COLUMN seq bigint, ADD COLUMN prev_hash varchar(64), ADD COLUMN hash varchar(64);

ALTER TABLE console_auditevent DISABLE TRIGGER audit_event_append_only;
DO $$
DECLARE
    event record;
    n bigint := 0;
    link text := repeat('0', 64);
BEGIN
    FOR event IN SELECT * FROM console_auditevent ORDER BY id LOOP
        n := n + 1;
        UPDATE console_auditevent SET seq = n, prev_hash = link,
            hash = audit_event_digest(link, n, event.actor_id, event.actor_name, event.action,
                                      event.object_type, event.object_id, event.object_repr, event.before,
                                      event.after, event.created_at)
        WHERE id = event.id RETURNING hash INTO link;
    END LOOP;
    INSERT INTO audit_chainhead (id, seq, hash) VALUES (1, n, link);
END;
$$;
ALTER TABLE console_auditevent ENABLE TRIGGER audit_event_append_only;

ALTER TABLE console_auditevent
    ALTER COLUMN seq SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL,
    ADD CONSTRAINT console_auditevent_seq_uniq UNIQUE (seq);

CREATE TRIGGER audit_event_chain BEFORE INSERT ON console_auditevent
FOR EACH ROW EXECUTE FUNCTION audit_event_chain();
CREATE TRIGGER audit_event_chain_head AFTER INSERT ON console_auditevent
FOR EACH STATEMENT EXECUTE FUNCTION audit_event_chain_head();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_event_chain_head ON console_auditevent;
DROP TRIGGER IF EXISTS audit_event_chain ON console_auditevent;
DROP FUNCTION IF EXISTS audit_event_chain_head();
DROP FUNCTION IF EXISTS audit_event_chain();
ALTER TABLE console_auditevent DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN hash;
DROP FUNCTION IF EXISTS audit_event_digest(text, bigint, bigint, text, text, text, text, text, jsonb, jsonb,
                                           timestamptz);
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="ChainHead",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.BigIntegerField(default=0)),
                ("hash", models.CharField(default="0000000000000000000000000000000000000000000000000000000000000000",
                                          max_length=64)),
            ],
            options={
                "db_table": "audit_chainhead",
                "constraints": [models.CheckConstraint(condition=models.Q(id=1), name="audit_chainhead_one_row")],
            },
        ),
        migrations.CreateModel(
            name="ChainCheck",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("checked_at", models.DateTimeField(auto_now_add=True)),
                ("ok", models.BooleanField()),
                ("count", models.BigIntegerField(default=0)),
                ("head_seq", models.BigIntegerField(blank=True, null=True)),
                ("head_hash", models.CharField(blank=True, max_length=64)),
                ("broken_seq", models.BigIntegerField(blank=True, null=True)),
                ("broken_id", models.BigIntegerField(blank=True, null=True)),
                ("problem", models.TextField(blank=True)),
            ],
            options={"db_table": "audit_chaincheck"},
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, BACKWARD)],
            state_operations=[
                migrations.AddField(
                    model_name="auditevent", name="seq",
                    field=models.BigIntegerField(editable=False, help_text="Position in the hash chain", unique=True),
                    preserve_default=False,
                ),
                migrations.AddField(
                    model_name="auditevent", name="prev_hash",
                    field=models.CharField(editable=False, help_text="The previous event's hash", max_length=64),
                    preserve_default=False,
                ),
                migrations.AddField(
                    model_name="auditevent", name="hash",
                    field=models.CharField(editable=False, help_text="sha256 over this event and prev_hash",
                                           max_length=64),
                    preserve_default=False,
                ),
            ],
        ),
    ]
