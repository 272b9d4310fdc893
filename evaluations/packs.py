"""Policy packs: a folder or a .zip of policies and their labelled sets, in the teen-safety pack's layout

    example_policies/<slug>/policy.md     the policy text
    datasets/<slug>.csv                   its labelled set (named <slug>)
    datasets/<slug>/<name>.csv            more sets of the same policy (named <name>)

or flat: `<slug>/policy.md` with `<slug>.csv` beside the folder (and more sets inside it). Data files may
be CSV, TSV, JSON Lines or JSON, gzipped or not. An exported pack adds `policy.json` beside each
policy.md (name, label scheme, labels, output format, reasoning effort), so a pack read back gives the
same policy (and the sets' own names, where a file name had to differ); a pack without one gets a
scheme read from its text.

Importing makes each policy a draft (or reuses one with the same name whose latest text is the same, or
adds a new draft version to it when the text differs) and each data file the labelled set named after
it, mapped by `mapping.suggest_mapping`. The whole pack goes in, or none of it does."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from evaluations.files import EXTENSIONS, max_bytes, read_table
from evaluations.mapping import Imported, import_table, suggest_mapping
from evaluations.models import Example, LabeledSet
from evaluations.sets import SetError
from policies_app import services
from policies_app.models import ContentKind, LabelScheme, OutputFormat, Policy, PolicyVersion, ReasoningEffort
from policies_app.services import MAX_POLICY_CHARS
from policies_app.views import RESERVED_SLUGS
from safeguard.instructions import instruction_text
from safeguard.labels import is_safe_label

POLICY_FILES = ("policy.md", "policy.txt")
META_FILE = "policy.json"
EXPORT_COLUMNS = ["text", "prompt", "response", "label"]

# A category code in a heading: "## Allowed Content (DC0 - Non-dangerous ...)", or in a plain-text policy
# a short line such as "✅ Allowed Content (SP0 – Non-Spam ...)".
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$")
_HEADING_CODE = re.compile(r"\(\s*([A-Z]{1,8}\d{1,3})\s*(?:[-–—:)]|$)")
_LABEL_LINE = re.compile(r"^[\s\-*•>]*`([A-Z]{1,8}\d{1,3})`\s*[:=\-–—]", re.MULTILINE)
_VALIDITY = re.compile(r"(?<![A-Za-z0-9_])(?:VALID|INVALID)(?![A-Za-z0-9_])")
_JSON = re.compile(r"\{\s*\"|\bJSON\b", re.IGNORECASE)
_DIGITS = re.compile(r"(?<![\w.])[01](?![\w.])\s*(?:or|/|\|)\s*(?<![\w.])[01](?![\w.])")
_TITLE_TAG = re.compile(r"\s*\(#?[A-Z]{1,8}\)\s*$")


class PackError(SetError):
    """A pack that cannot be imported; the message names the file (and row and column) at fault."""


@dataclass
class PackSet:
    name: str  # the set's name: the data file's name without its extensions
    path: str  # where it is in the pack
    data: bytes


@dataclass
class PackPolicy:
    slug: str
    path: str  # the policy file's place in the pack
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    sets: list[PackSet] = field(default_factory=list)


@dataclass
class PolicyReport:
    policy: Policy
    version: PolicyVersion
    outcome: str  # "created", "reused" or "new version"
    sets: list[Imported] = field(default_factory=list)


@dataclass
class PackReport:
    policies: list[PolicyReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # files of the pack that were not imported, and why


# --- reading a pack ----------------------------------------------------------------------------------


def _entries(path: Path, stack: ExitStack) -> tuple[dict[str, Callable[[], bytes]], str]:
    """The pack's files as relative POSIX paths with a reader for each (a zip is read in place, never
    extracted), and the pack's name. Each read stops past LABELED_SET_MAX_BYTES."""
    limit = max_bytes()

    def checked(data: bytes, name: str) -> bytes:
        if len(data) > limit:
            raise PackError(f"{name}: larger than the {limit:,} bytes a file may have")
        return data

    def reader_for(file: Path) -> Callable[[], bytes]:
        def read() -> bytes:
            with file.open("rb") as handle:
                return checked(handle.read(limit + 1), file.relative_to(path).as_posix())
        return read

    if path.is_dir():
        files = {p.relative_to(path).as_posix(): reader_for(p) for p in sorted(path.rglob("*")) if p.is_file()}
        return files, path.name
    if not path.is_file():
        raise PackError(f"{path} is neither a folder nor a file")
    if not zipfile.is_zipfile(path):
        raise PackError(f"{path} is not a folder or a .zip file")
    archive = stack.enter_context(zipfile.ZipFile(path))
    entries: dict[str, Callable[[], bytes]] = {}
    for info in archive.infolist():
        if info.is_dir() or info.filename.startswith("__MACOSX/"):
            continue

        def read(info: zipfile.ZipInfo = info) -> bytes:
            if info.file_size > limit:
                raise PackError(f"{info.filename}: larger than the {limit:,} bytes a file may have")
            with archive.open(info) as handle:  # the sizes a zip declares may lie: count what comes out
                return checked(handle.read(limit + 1), info.filename)
        entries[PurePosixPath(info.filename).as_posix()] = read
    return entries, path.stem


def _data_stem(name: str) -> str | None:
    """A data file's name without its extensions ("x.csv.gz" -> "x"), or None when it is not a data file."""
    lowered = name.lower()
    if lowered.endswith(".gz"):
        lowered, name = lowered[:-3], name[:-3]
    suffix = PurePosixPath(lowered).suffix
    return name[: -len(suffix)] if suffix in EXTENSIONS and len(name) > len(suffix) else None


def read_pack(path: str | Path) -> tuple[list[PackPolicy], list[str], str]:
    """The policies of a pack with their data files; notes on files left out; the pack's name."""
    with ExitStack() as stack:
        entries, pack_name = _entries(Path(path), stack)
        return _policies_in(entries, pack_name, path)


def _policies_in(entries: dict[str, Callable[[], bytes]], pack_name: str,
                 path: str | Path) -> tuple[list[PackPolicy], list[str], str]:
    hidden = {p for p in entries if any(part.startswith(".") for part in PurePosixPath(p).parts)}
    paths = [p for p in entries if p not in hidden]
    nested = [p for p in paths if re.fullmatch(r"(?:.*/)?example_policies/[^/]+/policy\.(?:md|txt)", p)]
    policy_paths = nested or [p for p in paths if re.fullmatch(r"(?:.*/)?[^/]+/policy\.(?:md|txt)", p)]
    if not policy_paths:
        raise PackError(f"{path}: no policy found (expected example_policies/<slug>/policy.md and "
                        "datasets/<slug>.csv, or <slug>/policy.md and <slug>.csv)")
    policies: dict[str, PackPolicy] = {}
    used: set[str] = set()
    for policy_path in sorted(policy_paths, key=lambda p: (p.endswith(".txt"), p)):
        folder = PurePosixPath(policy_path).parent
        slug = folder.name
        if slug in policies:
            continue  # policy.md beside a policy.txt: the .md is the policy
        text = _decode(entries[policy_path](), policy_path)
        pack_policy = PackPolicy(slug=slug, path=policy_path, text=text)
        used.add(policy_path)
        meta_path = (folder / META_FILE).as_posix()
        if meta_path in entries:
            pack_policy.meta = _meta(entries[meta_path](), meta_path)
            used.add(meta_path)
        if nested:
            data_folder = folder.parent.parent / "datasets"
            candidates = [(p, data_folder) for p in paths if PurePosixPath(p).parent == data_folder] + [
                (p, data_folder / slug) for p in paths if PurePosixPath(p).parent == data_folder / slug]
        else:
            candidates = [(p, folder.parent) for p in paths if PurePosixPath(p).parent == folder.parent] + [
                (p, folder) for p in paths if PurePosixPath(p).parent == folder]
        for data_path, parent in candidates:
            stem = _data_stem(PurePosixPath(data_path).name)
            if stem is None or data_path in used or PurePosixPath(data_path).name == META_FILE:
                continue
            if parent.name != slug and stem != slug:
                continue  # another policy's file (datasets/<other>.csv)
            pack_policy.sets.append(PackSet(name=stem, path=data_path, data=b""))
            used.add(data_path)
        names = pack_policy.meta.get("sets") if isinstance(pack_policy.meta.get("sets"), dict) else {}
        for pack_set in pack_policy.sets:
            pack_set.data = entries[pack_set.path]()
            # An exported set's own name, where its file name had to differ ("a/b" is saved as "a_b.csv").
            pack_set.name = str(names.get(pack_set.name) or pack_set.name)[:200]
        policies[slug] = pack_policy
    notes = [f"{p}: not the policy or labelled set of any policy in the pack, left out" for p in paths
             if p not in used and (_data_stem(PurePosixPath(p).name) is not None)]
    return list(policies.values()), notes, pack_name


def _decode(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PackError(f"{where}: not UTF-8 (byte offset {exc.start:,}); save it as UTF-8") from None
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise PackError(f"{where}: the policy is empty")
    if len(text) > MAX_POLICY_CHARS:
        raise PackError(f"{where}: the policy is longer than {MAX_POLICY_CHARS:,} characters")
    return text


def _meta(data: bytes, where: str) -> dict[str, Any]:
    try:
        meta = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:
        raise PackError(f"{where}: not a JSON object ({exc})") from None
    if not isinstance(meta, dict):
        raise PackError(f"{where}: not a JSON object")
    return meta


# --- what a policy's text asks for -------------------------------------------------------------------


def title_of(text: str, slug: str) -> str:
    """The policy's name: its first heading ("# Dangerous Content Policy (#DC)" gives "Dangerous Content
    Policy"), else its first line if short, else its folder's name."""
    for line in text.splitlines():
        if not line.strip():
            continue
        heading = _MD_HEADING.match(line)
        candidate = heading.group(1) if heading else line
        candidate = " ".join(_TITLE_TAG.sub("", candidate).split()).strip("#*_ ")
        if candidate and len(candidate) <= 120 and (heading or len(candidate) <= 80):
            return candidate
        break
    return slug.replace("-", " ").replace("_", " ").strip().capitalize() or "Imported policy"


def scheme_of(text: str) -> tuple[str, list[str], str]:
    """(label scheme, labels, output format) the text asks for. Categories when its headings (or its label
    format lines: "- `DC0`: ...") define two or more codes with one meaning no violation; else VALID/INVALID
    when it asks for those words; else 0/1. The output format is JSON when the instructions ask for JSON, a
    bare 0/1 for a 0/1 policy that asks for digits, else one label word or code."""
    codes: list[str] = []
    for line in text.splitlines():
        heading = _MD_HEADING.match(line)
        if heading or (len(line.strip()) <= 120 and _HEADING_CODE.search(line)):
            codes.extend(m.group(1) for m in _HEADING_CODE.finditer(heading.group(1) if heading else line))
    codes = list(dict.fromkeys(codes))
    if len(codes) < 2:
        codes = list(dict.fromkeys(m.group(1) for m in _LABEL_LINE.finditer(text)))
    asked = instruction_text(text)
    asks_json = _JSON.search(asked) is not None
    if len(codes) >= 2 and any(is_safe_label(code) for code in codes):
        return LabelScheme.CATEGORIES, codes, OutputFormat.JSON if asks_json else OutputFormat.LABEL
    if _VALIDITY.search(asked):
        return LabelScheme.VALID_INVALID, ["VALID", "INVALID"], OutputFormat.JSON if asks_json else OutputFormat.LABEL
    if asks_json:
        return LabelScheme.BINARY, ["0", "1"], OutputFormat.JSON
    return LabelScheme.BINARY, ["0", "1"], OutputFormat.BINARY if _DIGITS.search(asked) else OutputFormat.LABEL


def _settings_of(pack_policy: PackPolicy) -> dict[str, Any]:
    """What create_policy needs: from policy.json where there is one, else read from the text."""
    meta = pack_policy.meta
    scheme, labels, output_format = scheme_of(pack_policy.text)
    if meta.get("label_scheme") in LabelScheme.values:
        scheme = meta["label_scheme"]
        labels = meta.get("labels") or labels
    if meta.get("output_format") in OutputFormat.values:
        output_format = meta["output_format"]
    effort = meta.get("reasoning_effort")
    return {
        "name": str(meta.get("name") or title_of(pack_policy.text, pack_policy.slug))[:120],
        "description": str(meta.get("description") or "")[:300],
        "label_scheme": scheme,
        "labels": labels,
        "output_format": output_format,
        "reasoning_effort": effort if effort in ReasoningEffort.values else ReasoningEffort.MEDIUM,
    }


# --- importing ---------------------------------------------------------------------------------------


def _policy_for(actor: Any, pack_policy: PackPolicy, pack_name: str) -> tuple[PolicyVersion, str]:
    fields = _settings_of(pack_policy)
    note = f"Imported from policy pack {pack_name}"[:300]
    existing = Policy.objects.filter(name__iexact=fields["name"]).first()
    if existing is None:
        slug = slugify(pack_policy.slug)[:100]
        if not slug or slug in RESERVED_SLUGS or Policy.objects.filter(slug=slug).exists():
            slug = ""  # the service picks a free one from the name
        return services.create_policy(actor=actor, text=pack_policy.text, slug=slug, change_note=note,
                                      **fields), "created"
    latest = existing.latest_version()
    if latest is not None and latest.text == pack_policy.text:
        return latest, "reused"
    version = services.save_version(
        actor=actor, policy=existing, base_number=latest.number if latest else 0, text=pack_policy.text,
        label_scheme=fields["label_scheme"], labels=fields["labels"], output_format=fields["output_format"],
        reasoning_effort=fields["reasoning_effort"], change_note=note)
    return version, "new version"


def import_pack(*, actor: Any, path: str | Path, actor_name: str = "") -> PackReport:
    """Every policy of the pack as a draft and every data file as its policy's labelled set, in one
    transaction: a file that cannot be read refuses the whole pack (PackError naming file, row and column)."""
    pack_policies, notes, pack_name = read_pack(path)
    report = PackReport(notes=notes)
    with transaction.atomic():
        for pack_policy in pack_policies:
            try:
                version, outcome = _policy_for(actor, pack_policy, pack_name)
            except services.PolicyError as exc:
                raise PackError(f"{pack_policy.path}: {' '.join(exc.messages)}") from exc
            policy_report = PolicyReport(policy=version.policy, version=version, outcome=outcome)
            for pack_set in pack_policy.sets:
                try:
                    table = read_table(pack_set.data, name=PurePosixPath(pack_set.path).name)
                    mapping = suggest_mapping(table, version)
                    imported = import_table(actor=actor, policy=version.policy, table=table, mapping=mapping,
                                            set_name=pack_set.name, actor_name=actor_name,
                                            source=f"{pack_name}/{pack_set.path}")
                except SetError as exc:
                    raise PackError(f"{pack_set.path}, {exc}") from exc
                policy_report.sets.append(imported)
            report.policies.append(policy_report)
    return report


# --- exporting ---------------------------------------------------------------------------------------


def _file_name(name: str) -> str:
    """A set's name as a file name: path separators and control characters replaced, no leading dot."""
    cleaned = re.sub(r"[/\\\x00-\x1f\x7f:*?\"<>|]", "_", name).strip().lstrip(".")
    return cleaned[:150] or "set"


def example_row(example: Example) -> dict[str, str]:
    """An example as the export's columns: a message's text, a completion's prompt and response, or a
    conversation's turns as JSON."""
    row = {"text": "", "prompt": "", "response": "", "turns": "", "label": example.label}
    turns = example.turns or []
    roles = [t.get("role") for t in turns]
    if (example.kind == ContentKind.COMPLETION and not example.content and roles == ["user", "assistant"]):
        row["prompt"], row["response"] = turns[0].get("content", ""), turns[1].get("content", "")
    elif turns:
        row["turns"] = json.dumps(turns, ensure_ascii=False)
    else:
        row["text"] = example.content
    return row


def set_csv(labeled_set: LabeledSet) -> str:
    examples = list(labeled_set.examples.order_by("id"))
    rows = [example_row(e) for e in examples]
    columns = EXPORT_COLUMNS[:3] + (["turns"] if any(r["turns"] for r in rows) else []) + ["label"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def pack_files(versions: Sequence[PolicyVersion]) -> dict[str, str]:
    """The pack's files (relative path -> text) for these versions and all the labelled sets of their policies."""
    files: dict[str, str] = {}
    for version in versions:
        policy = version.policy
        folder = f"example_policies/{policy.slug}"
        files[f"{folder}/policy.md"] = version.text.rstrip("\n") + "\n"
        set_names: dict[str, str] = {}
        taken: set[str] = set()
        for labeled_set in LabeledSet.objects.filter(policy=policy).order_by("id"):
            if labeled_set.name.lower() == policy.slug.lower():
                path = f"datasets/{policy.slug}.csv"  # the pack's own layout: the set named after its policy
            else:
                base = _file_name(labeled_set.name)
                name, n = base, 2
                while name.lower() in taken:
                    name, n = f"{base} ({n})", n + 1
                taken.add(name.lower())
                path = f"datasets/{policy.slug}/{name}.csv"
                if name != labeled_set.name:
                    set_names[name] = labeled_set.name
            files[path] = set_csv(labeled_set)
        files[f"{folder}/{META_FILE}"] = json.dumps({
            "name": policy.name, "description": policy.description, "version": version.number,
            "label_scheme": version.label_scheme, "labels": list(version.labels or []),
            "output_format": version.output_format, "reasoning_effort": version.reasoning_effort,
            **({"sets": set_names} if set_names else {}),
        }, indent=2, ensure_ascii=False) + "\n"
    return files


def export_pack(*, versions: Sequence[PolicyVersion], out: str | Path) -> list[str]:
    """Write the pack to `out`: a .zip file, or else a folder (made if missing). The paths written."""
    out = Path(out)
    files = pack_files(versions)
    if out.suffix.lower() == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, text in files.items():
                archive.writestr(name, text.encode())
    else:
        for name, text in files.items():
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", newline="")
    return list(files)
