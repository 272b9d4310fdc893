"""The audit trail moved to its own app (`audit`): state only, the table stays console_auditevent."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("console", "0004_review_console")]
    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="AuditEvent")]),
    ]
