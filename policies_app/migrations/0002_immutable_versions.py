"""The database refuses to change what a saved version says, whatever code path tries."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION policy_version_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'policy versions cannot be deleted (version %)', OLD.id;
    END IF;
    IF NEW.text IS DISTINCT FROM OLD.text
       OR NEW.label_scheme IS DISTINCT FROM OLD.label_scheme
       OR NEW.labels IS DISTINCT FROM OLD.labels
       OR NEW.output_format IS DISTINCT FROM OLD.output_format
       OR NEW.reasoning_effort IS DISTINCT FROM OLD.reasoning_effort
       OR NEW.content_hash IS DISTINCT FROM OLD.content_hash
       OR NEW.policy_id IS DISTINCT FROM OLD.policy_id
       OR NEW.number IS DISTINCT FROM OLD.number THEN
        RAISE EXCEPTION 'policy version % is immutable: save a new version', OLD.id;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER policy_version_immutable
BEFORE UPDATE OR DELETE ON policies_app_policyversion
FOR EACH ROW EXECUTE FUNCTION policy_version_immutable();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS policy_version_immutable ON policies_app_policyversion;
DROP FUNCTION IF EXISTS policy_version_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("policies_app", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
