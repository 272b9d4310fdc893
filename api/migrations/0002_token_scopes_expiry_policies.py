"""API tokens get scopes, an expiry and a set of allowed policies.

Clients that exist when this runs keep working exactly as before: their tokens get every scope and no
expiry, and they are allowed every policy that exists now (before, a token could classify under any
published policy). Policies created later are allowed only where an admin allows them."""

import django.contrib.postgres.fields
from django.db import migrations, models

ALL_SCOPES = ["submit", "read", "moderations"]


def keep_existing_clients_working(apps, schema_editor):
    ApiClient = apps.get_model("api", "ApiClient")
    Policy = apps.get_model("policies_app", "Policy")
    ApiClient.objects.update(scopes=ALL_SCOPES, expires_at=None)
    policies = list(Policy.objects.values_list("pk", flat=True))
    Allowed = ApiClient.allowed_policies.through
    Allowed.objects.bulk_create(
        [Allowed(apiclient_id=client_id, policy_id=policy_id)
         for client_id in ApiClient.objects.values_list("pk", flat=True) for policy_id in policies],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):

    dependencies = [
        ("api", "0001_initial"),
        ("policies_app", "0002_immutable_versions"),
    ]

    operations = [
        migrations.AddField(
            model_name="apiclient",
            name="allowed_policies",
            field=models.ManyToManyField(blank=True, help_text="The policies this client may classify under; empty: none", related_name="+", to="policies_app.policy"),
        ),
        migrations.AddField(
            model_name="apiclient",
            name="expires_at",
            field=models.DateTimeField(blank=True, help_text="When the token stops working; empty: never", null=True),
        ),
        migrations.AddField(
            model_name="apiclient",
            name="scopes",
            field=django.contrib.postgres.fields.ArrayField(base_field=models.CharField(choices=[("submit", "Submit items (POST /api/v1/items, /api/v1/items/batch)"), ("read", "Read items, their verdicts and states, and the policy list"), ("moderations", "OpenAI-compatible moderation (POST /v1/moderations)")], max_length=20), blank=True, default=list),
        ),
        migrations.AddConstraint(
            model_name="apiclient",
            constraint=models.CheckConstraint(condition=models.Q(("scopes__contained_by", ["submit", "read", "moderations"])), name="api_client_scopes_known"),
        ),
        migrations.RunPython(keep_existing_clients_working, migrations.RunPython.noop, elidable=False),
    ]
