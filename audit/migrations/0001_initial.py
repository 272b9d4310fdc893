"""AuditEvent, moved here from the console app: state only (the table keeps its name and its
append-only trigger), and its content type moves too, so the permissions granted on it stay granted."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="audit", model="auditevent").exists():
        ContentType.objects.filter(app_label="console", model="auditevent").update(app_label="audit")


def move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="console", model="auditevent").exists():
        ContentType.objects.filter(app_label="audit", model="auditevent").update(app_label="console")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("console", "0005_auditevent_to_audit_app"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("actor_name", models.CharField(help_text="Username, or system:<process> for workers",
                                                        max_length=150)),
                        ("action", models.CharField(max_length=60)),
                        ("object_type", models.CharField(max_length=60)),
                        ("object_id", models.CharField(max_length=60)),
                        ("object_repr", models.CharField(blank=True, max_length=300)),
                        ("before", models.JSONField(blank=True, null=True)),
                        ("after", models.JSONField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("actor", models.ForeignKey(blank=True, null=True,
                                                    on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                                    to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "db_table": "console_auditevent",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(fields=["object_type", "object_id"], name="audit_object"),
                            models.Index(fields=["-created_at", "-id"], name="audit_recent"),
                            models.Index(fields=["action", "-created_at"], name="audit_action"),
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
