"""The three roles as groups, with the model permissions Django's admin shows them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "moderator": [
        ("console", "view_item"),
        ("console", "view_classification"),
        ("console", "view_review"),
        ("console", "add_review"),
    ],
    "policy_writer": [
        ("policies_app", "view_policy"),
        ("policies_app", "add_policy"),
        ("policies_app", "change_policy"),
        ("policies_app", "view_policyversion"),
        ("policies_app", "add_policyversion"),
    ],
    "admin": [
        ("console", "view_auditevent"),
        ("console", "view_item"),
        ("console", "view_classification"),
        ("console", "view_review"),
        ("policies_app", "view_policy"),
        ("policies_app", "view_policyversion"),
        ("auth", "view_user"),
        ("auth", "add_user"),
        ("auth", "change_user"),
        ("auth", "view_group"),
    ],
}


def create_groups(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in perms:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0002_append_only_audit"),
        ("policies_app", "0002_immutable_versions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_groups, remove_groups)]
