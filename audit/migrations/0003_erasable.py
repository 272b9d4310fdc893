"""The audit trail becomes erasable without breaking its chain: an event's hash covers a digest of its
payload (`payload_digest`, sha256 over before::text and after::text) instead of the payload itself, so
an erasure request can replace before/after by a marker and the chain still verifies.

- `audit_payload_digest(before, after)`: sha256 over the UTF-8 text of the JSON array
  [before::text, after::text] (`json.dumps([before_text, after_text], ensure_ascii=False)` in Python).
- `audit_event_digest(...)` now takes that digest where it took before and after; the chain trigger
  fills `payload_digest` on every INSERT (whatever the writer sent) and never lets `erased_at` in.
- `audit_erase_payloads(event ids, actor ...)`: SECURITY DEFINER, the one way to change a stored event.
  It replaces before/after of the named events by ERASED_MARKER, stamps erased_at, and appends an
  `audit.payloads_erased` event listing the seqs it erased (which `verify` requires of every erased
  event). The append-only trigger lets exactly that UPDATE through (the transaction's `audit.erasing`
  flag, only before/after/erased_at changed, to the marker, once) and refuses everything else.

The existing chain is verified with the old definition first, and the migration stops if it is broken:
re-chaining a tampered history would make it look intact. Then every event is re-hashed in seq order.
Checkpoints signed before this migration name hashes that no longer exist.
"""

from django.db import migrations, models

MARKER = '{"erased": true}'

OLD_DIGEST_ARGS = "text, bigint, bigint, text, text, text, text, text, jsonb, jsonb, timestamptz"
NEW_DIGEST_ARGS = "text, bigint, bigint, text, text, text, text, text, text, timestamptz"

# Checks the chain as 0002 built it (or as this migration's backward step leaves it).
CHECK_OLD_CHAIN = """
DO $$
DECLARE
    event record;
    n bigint := 0;
    link text := repeat('0', 64);
    head record;
BEGIN
    FOR event IN SELECT * FROM console_auditevent ORDER BY seq LOOP
        n := n + 1;
        IF event.seq <> n OR event.prev_hash <> link OR event.hash <> audit_event_digest(
                event.prev_hash, event.seq, event.actor_id, event.actor_name, event.action, event.object_type,
                event.object_id, event.object_repr, event.before, event.after, event.created_at) THEN
            RAISE EXCEPTION 'the audit chain is broken at seq % (see manage.py verify_audit); it is not '
                're-chained, which would make a tampered history look intact', event.seq;
        END IF;
        link := event.hash;
    END LOOP;
    SELECT seq, hash INTO head FROM audit_chainhead WHERE id = 1;
    IF FOUND AND (head.seq, head.hash) IS DISTINCT FROM (n, link) THEN
        RAISE EXCEPTION 'the audit chain head (seq %) is not its last event (seq %); not re-chained', head.seq, n;
    END IF;
END;
$$;
"""

FUNCTIONS = """
CREATE OR REPLACE FUNCTION audit_payload_digest(before jsonb, after jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(jsonb_build_array(before::text, after::text)::text, 'UTF8')), 'hex')
$$;

DROP FUNCTION audit_event_digest(OLD_DIGEST_ARGS);
CREATE FUNCTION audit_event_digest(
    prev_hash text, seq bigint, actor_id bigint, actor_name text, action text, object_type text,
    object_id text, object_repr text, payload_digest text, created_at timestamptz
) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(jsonb_build_array(
        prev_hash, seq, actor_id, actor_name, action, object_type, object_id, object_repr, payload_digest,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    )::text, 'UTF8')), 'hex')
$$;

CREATE OR REPLACE FUNCTION audit_event_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tx text := pg_current_xact_id()::text;
    state text := current_setting('audit.chain_head', true);
    head_seq bigint;
    head_hash text;
BEGIN
    IF state IS NOT NULL AND split_part(state, ':', 1) = tx THEN
        head_seq := split_part(state, ':', 2)::bigint;
        head_hash := split_part(state, ':', 3);
    ELSE
        SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_chainhead AS h WHERE h.id = 1 FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO audit_chainhead (id, seq, hash) VALUES (1, 0, repeat('0', 64)) ON CONFLICT (id) DO NOTHING;
            SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_chainhead AS h WHERE h.id = 1 FOR UPDATE;
        END IF;
    END IF;
    NEW.seq := head_seq + 1;
    NEW.prev_hash := head_hash;
    NEW.erased_at := NULL;  -- an event is born whole; only audit_erase_payloads erases it
    NEW.payload_digest := audit_payload_digest(NEW.before, NEW.after);
    NEW.hash := audit_event_digest(NEW.prev_hash, NEW.seq, NEW.actor_id, NEW.actor_name, NEW.action,
                                   NEW.object_type, NEW.object_id, NEW.object_repr, NEW.payload_digest,
                                   NEW.created_at);
    PERFORM set_config('audit.chain_head', tx || ':' || NEW.seq || ':' || NEW.hash, true);
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The one change allowed: audit_erase_payloads replacing a payload by the marker, once, with every
    -- hashed column (and the payload's digest) as it was.
    IF TG_OP = 'UPDATE'
       AND current_setting('audit.erasing', true) = pg_current_xact_id()::text
       AND OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL
       AND OLD.action <> 'audit.payloads_erased'
       AND NEW.before = 'MARKER'::jsonb AND NEW.after = 'MARKER'::jsonb
       AND (NEW.id, NEW.seq, NEW.prev_hash, NEW.hash, NEW.payload_digest, NEW.actor_id, NEW.actor_name,
            NEW.action, NEW.object_type, NEW.object_id, NEW.object_repr, NEW.created_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.seq, OLD.prev_hash, OLD.hash, OLD.payload_digest, OLD.actor_id, OLD.actor_name,
            OLD.action, OLD.object_type, OLD.object_id, OLD.object_repr, OLD.created_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP;
END;
$$;

CREATE OR REPLACE FUNCTION audit_erase_payloads(
    event_ids bigint[], actor_id bigint, actor_name text, object_type text, object_id text, object_repr text
) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, SCHEMA, pg_temp AS $$
DECLARE
    erased bigint[];
BEGIN
    PERFORM set_config('audit.erasing', pg_current_xact_id()::text, true);
    WITH done AS (
        UPDATE console_auditevent AS e SET before = 'MARKER'::jsonb, after = 'MARKER'::jsonb, erased_at = now()
        WHERE e.id = ANY(event_ids) AND e.erased_at IS NULL AND e.action <> 'audit.payloads_erased'
        RETURNING e.seq)
    SELECT coalesce(array_agg(seq ORDER BY seq), '{}') INTO erased FROM done;
    PERFORM set_config('audit.erasing', '', true);
    IF cardinality(erased) > 0 THEN
        -- Chained like any event: the record of which payloads went, by whom and why.
        INSERT INTO console_auditevent (actor_id, actor_name, action, object_type, object_id, object_repr,
                                        before, after, created_at)
        VALUES (actor_id, actor_name, 'audit.payloads_erased', object_type, object_id, left(object_repr, 300),
                NULL, jsonb_build_object('seqs', to_jsonb(erased)), now());
    END IF;
    RETURN cardinality(erased);
END;
$$;
"""

RECHAIN = """
ALTER TABLE console_auditevent ADD COLUMN payload_digest varchar(64), ADD COLUMN erased_at timestamptz;
ALTER TABLE console_auditevent DISABLE TRIGGER audit_event_append_only;
UPDATE console_auditevent SET payload_digest = audit_payload_digest(before, after);
DO $$
DECLARE
    event record;
    link text := repeat('0', 64);
BEGIN
    FOR event IN SELECT * FROM console_auditevent ORDER BY seq LOOP
        UPDATE console_auditevent SET prev_hash = link,
            hash = audit_event_digest(link, event.seq, event.actor_id, event.actor_name, event.action,
                                      event.object_type, event.object_id, event.object_repr,
                                      event.payload_digest, event.created_at)
        WHERE id = event.id RETURNING hash INTO link;
    END LOOP;
    UPDATE audit_chainhead SET hash = link WHERE id = 1;
END;
$$;
ALTER TABLE console_auditevent ENABLE TRIGGER audit_event_append_only;
ALTER TABLE console_auditevent ALTER COLUMN payload_digest SET NOT NULL;
"""


def forward(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        [schema] = cursor.fetchone()
        cursor.execute(CHECK_OLD_CHAIN)
        cursor.execute(FUNCTIONS.replace("OLD_DIGEST_ARGS", OLD_DIGEST_ARGS).replace("MARKER", MARKER)
                       .replace("SCHEMA", schema_editor.connection.ops.quote_name(schema)))
        cursor.execute(RECHAIN)


# Back to 0002's chain: only for a trail that was never erased (an erased payload cannot be hashed again
# as what it was), refused otherwise.
BACKWARD = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM console_auditevent WHERE erased_at IS NOT NULL) THEN
        RAISE EXCEPTION 'erased audit events cannot be hashed under the old definition';
    END IF;
END;
$$;
DROP FUNCTION audit_erase_payloads(bigint[], bigint, text, text, text, text);
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP FUNCTION audit_event_digest(NEW_DIGEST_ARGS);
CREATE FUNCTION audit_event_digest(
    prev_hash text, seq bigint, actor_id bigint, actor_name text, action text, object_type text,
    object_id text, object_repr text, before jsonb, after jsonb, created_at timestamptz
) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(jsonb_build_array(
        prev_hash, seq, actor_id, actor_name, action, object_type, object_id, object_repr,
        before::text, after::text,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    )::text, 'UTF8')), 'hex')
$$;
CREATE OR REPLACE FUNCTION audit_event_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tx text := pg_current_xact_id()::text;
    state text := current_setting('audit.chain_head', true);
    head_seq bigint;
    head_hash text;
BEGIN
    IF state IS NOT NULL AND split_part(state, ':', 1) = tx THEN
        head_seq := split_part(state, ':', 2)::bigint;
        head_hash := split_part(state, ':', 3);
    ELSE
        SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_chainhead AS h WHERE h.id = 1 FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO audit_chainhead (id, seq, hash) VALUES (1, 0, repeat('0', 64)) ON CONFLICT (id) DO NOTHING;
            SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_chainhead AS h WHERE h.id = 1 FOR UPDATE;
        END IF;
    END IF;
    NEW.seq := head_seq + 1;
    NEW.prev_hash := head_hash;
    NEW.hash := audit_event_digest(NEW.prev_hash, NEW.seq, NEW.actor_id, NEW.actor_name, NEW.action,
                                   NEW.object_type, NEW.object_id, NEW.object_repr, NEW.before, NEW.after,
                                   NEW.created_at);
    PERFORM set_config('audit.chain_head', tx || ':' || NEW.seq || ':' || NEW.hash, true);
    RETURN NEW;
END;
$$;
ALTER TABLE console_auditevent DISABLE TRIGGER audit_event_append_only;
DO $$
DECLARE
    event record;
    link text := repeat('0', 64);
BEGIN
    FOR event IN SELECT * FROM console_auditevent ORDER BY seq LOOP
        UPDATE console_auditevent SET prev_hash = link,
            hash = audit_event_digest(link, event.seq, event.actor_id, event.actor_name, event.action,
                                      event.object_type, event.object_id, event.object_repr, event.before,
                                      event.after, event.created_at)
        WHERE id = event.id RETURNING hash INTO link;
    END LOOP;
    UPDATE audit_chainhead SET hash = link WHERE id = 1;
END;
$$;
ALTER TABLE console_auditevent ENABLE TRIGGER audit_event_append_only;
ALTER TABLE console_auditevent DROP COLUMN payload_digest, DROP COLUMN erased_at;
DROP FUNCTION audit_payload_digest(jsonb, jsonb);
""".replace("NEW_DIGEST_ARGS", NEW_DIGEST_ARGS)


def backward(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_hash_chain")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forward, backward)],
            state_operations=[
                migrations.AddField(
                    model_name="auditevent", name="payload_digest",
                    field=models.CharField(editable=False, max_length=64,
                                           help_text="sha256 over before and after, which the hash covers"),
                    preserve_default=False,
                ),
                migrations.AddField(
                    model_name="auditevent", name="erased_at",
                    field=models.DateTimeField(blank=True, editable=False, null=True,
                                               help_text="When an erasure replaced before and after by a marker"),
                ),
            ],
        ),
    ]
