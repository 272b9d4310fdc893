"""Import a file of labelled examples into a labelled set of a policy (the import page's twin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from evaluations import files
from evaluations.mapping import Mapping, import_table, parse_pairs, suggest_mapping
from evaluations.sets import SetError, scheme_version
from policies_app.models import LabelScheme, Policy

ACTOR = "system:import_examples"


def _stem(path: Path) -> str:
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    return Path(name).stem or name


class Command(BaseCommand):
    help = ("Import labelled examples from a CSV, TSV, JSON Lines or JSON file (plain or gzipped) into a labelled "
            "set of a policy. Without column options the mapping is guessed from the column names; every row is "
            "checked against the policy's labels first, and a file with one bad row stores nothing.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("policy", help="The policy's slug")
        parser.add_argument("file", type=Path)
        parser.add_argument("--set", dest="set_name", default="", help="The set's name (default: the file's name)")
        content = parser.add_argument_group("content (default: guessed from the column names)")
        content.add_argument("--text", default="", help="The column holding a message's text")
        content.add_argument("--prompt", default="", help="With --response: a completion (the user's prompt...)")
        content.add_argument("--response", default="", help="... and the assistant's response)")
        content.add_argument("--turns", default="",
                             help="The column holding a conversation (a JSON list of role and content)")
        label = parser.add_argument_group("labels (default: guessed from the column names)")
        label.add_argument("--label", default="", help="The label column")
        label.add_argument("--prompt-label", default="",
                           help="With --prompt: the prompt alone is an example too, labelled by this column")
        label.add_argument("--category-columns", default="",
                           help="Comma-separated 0/1 columns; any 1 is a violation")
        label.add_argument("--map", dest="value_map", default="",
                           help="value=label,... for the label column (spam=1,ham=0; unsure= skips those rows); "
                                "with --category-columns on a category policy: column=code,...")

    def _mapping(self, options: dict[str, Any], table: files.Table, version: Any) -> Mapping:
        """The columns given as options; what is not given is guessed (suggest_mapping)."""
        guessed = suggest_mapping(table, version)
        mapping = Mapping(text=options["text"], prompt=options["prompt"], response=options["response"],
                          turns=options["turns"], label=options["label"], prompt_label=options["prompt_label"],
                          category_columns=[c.strip() for c in options["category_columns"].split(",") if c.strip()])
        if not (mapping.text or mapping.prompt or mapping.response or mapping.turns):
            mapping.text, mapping.prompt = guessed.text, guessed.prompt
            mapping.response, mapping.turns = guessed.response, guessed.turns
        if not (mapping.label or mapping.category_columns):
            mapping.label, mapping.category_columns = guessed.label, guessed.category_columns
            mapping.category_codes = dict(guessed.category_codes)
            if not mapping.prompt_label and mapping.prompt == guessed.prompt:
                mapping.prompt_label = guessed.prompt_label
        pairs = parse_pairs(options["value_map"])
        if mapping.category_columns and version.label_scheme == LabelScheme.CATEGORIES:
            mapping.category_codes.update(pairs)
        else:
            mapping.values.update(pairs)
        return mapping

    def handle(self, *args: Any, **options: Any) -> None:
        policy = Policy.objects.filter(slug=options["policy"]).first()
        if policy is None:
            raise CommandError(f"No policy with slug {options['policy']!r}")
        path: Path = options["file"]
        try:
            version = scheme_version(policy)
            table = files.read_table(path)
            mapping = self._mapping(options, table, version)
            imported = import_table(actor=None, actor_name=ACTOR, policy=policy, table=table, mapping=mapping,
                                    set_name=options["set_name"] or _stem(path), source=path.name)
        except SetError as exc:
            raise CommandError(f"{path.name}: {exc}. Nothing was imported.") from exc
        for note in table.notes:
            self.stdout.write(f"{path.name}: {note}")
        self.stdout.write(f"Read {mapping.describe()}")
        rows = ", ".join(map(str, imported.skipped_rows))
        skipped = f", {imported.skipped} skipped for an empty label (rows {rows})" if rows else ", 0 skipped"
        self.stdout.write(f"{imported.labeled_set.name} ({policy.slug}): {imported.added} added, "
                          f"{imported.duplicates} duplicates{skipped}")
        if imported.relabel_conflicts:
            self.stdout.write(f"Rows {', '.join(map(str, imported.relabel_conflicts[:20]))} repeat examples already "
                              "in the set with another label; the stored labels were kept")
