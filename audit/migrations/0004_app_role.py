"""The chain's trigger functions run as their owner (SECURITY DEFINER), so an INSERT by the application's
role, which may only read `audit_chainhead` (audit.database_roles), still locks and moves the head.

Their search_path is fixed to the schema they were made in (pg_temp last), so neither a caller's
search_path nor its temporary objects can stand in for the tables and functions they use as the owner.

The chain trigger also stops trusting its transaction-local link (`audit.chain_head`) blindly: any
session may set that setting, so a writer could otherwise link its next event to a made-up seq and hash.
The link it follows must be an event that exists with that hash (one unique-index lookup per row; rows
inserted earlier by the same statement are visible to a VOLATILE row trigger).
"""

from django.db import migrations

CHAIN = """
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
        PERFORM 1 FROM console_auditevent AS e WHERE e.seq = head_seq AND e.hash = head_hash;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'audit chain: the link this transaction follows (seq %) is not an event', head_seq
                USING ERRCODE = 'insufficient_privilege';
        END IF;
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
"""

FORWARD = CHAIN + """
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION audit_event_chain() SECURITY DEFINER SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION audit_event_chain_head() SECURITY DEFINER SET search_path = %I, pg_temp',
                   current_schema());
END;
$$;
"""

# The check on the link stays (it only refuses forged links); the functions run as their caller again.
BACKWARD = """
ALTER FUNCTION audit_event_chain() SECURITY INVOKER RESET search_path;
ALTER FUNCTION audit_event_chain_head() SECURITY INVOKER RESET search_path;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_erasable")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
