"""The chain trigger's link check always uses the unique index on seq (enable_seqscan = off inside it).

PL/pgSQL caches the plans of its queries. The check that the transaction's link is a real event
(`WHERE e.seq = head_seq AND e.hash = head_hash`, 0004) could get a generic plan made while the table
was small, a sequential scan, and keep it: one INSERT of 200,000 events then scanned the growing table
once per row (the suite's audit export test ran for minutes on it before it was stopped, where alone it
takes a minute). With sequential scans off inside the function every plan of that query, cached or
not, is the index lookup; the function's other queries are already index lookups (the head's primary
key), and the functions it calls read no tables.
"""

from django.db import migrations

FORWARD = "ALTER FUNCTION audit_event_chain() SET enable_seqscan = off;"
BACKWARD = "ALTER FUNCTION audit_event_chain() RESET enable_seqscan;"


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_app_role")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
