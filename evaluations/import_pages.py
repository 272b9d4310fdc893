"""The import pages, for policy writers and admins: upload a file for a policy (into a new set or an
existing one), then map its columns (the first rows shown, the mapping prefilled by
`mapping.suggest_mapping`, a preview of how the first rows will be read, redrawn by htmx on every
change) and import it: added, duplicate and skipped counts, or the error naming row and column with
nothing stored.

Between the two steps the upload waits in LABELED_SET_UPLOAD_DIR under a random token that only the
session that uploaded it knows; the browser never sends a path. It is removed once imported, and
any upload older than a day is removed on the next upload.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.db.models.functions import Lower
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods
from django_htmx.middleware import HtmxDetails

from accounts.roles import Role, role_required
from evaluations import files
from evaluations.files import Table
from evaluations.mapping import (
    SKIP,
    Mapping,
    cell_text,
    check_mapping,
    guess_label,
    import_table,
    label_values,
    read_row,
    suggest_mapping,
)
from evaluations.models import LabeledSet
from evaluations.sets import SetError, allowed_labels, meaning, scheme_version
from policies_app.models import LabelScheme, Policy, PolicyVersion

log = logging.getLogger(__name__)

WRITERS = (Role.POLICY_WRITER, Role.ADMIN)
SESSION_KEY = "evaluations.imports"
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{32}")
UPLOAD_KEEP_S = 24 * 3600
UPLOADS_PER_SESSION = 10
PREVIEW_ROWS = 10
CELL_PREVIEW = 200  # characters of a cell shown in the first-rows table
SKIP_CHOICE = "__skip__"
MULTIPART_SLACK = 1024 * 1024  # form fields and boundaries beside the file


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class UploadForm(forms.Form):
    policy = forms.ModelChoiceField(queryset=Policy.objects.order_by(Lower("name")), to_field_name="slug",
                                    empty_label="Choose a policy")
    file = forms.FileField(label="File")
    set_name = forms.CharField(label="Labelled set", max_length=200, required=False,
                               widget=forms.TextInput(attrs={"list": "existing-sets", "autocomplete": "off"}),
                               help_text="A new set's name, or an existing set's name to add to it "
                               "(empty: the file's name)")


# --- the upload waiting between the steps --------------------------------------------------------------


def _folder() -> Path:
    folder = Path(settings.LABELED_SET_UPLOAD_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _path(token: str) -> Path:
    return _folder() / f"{token}.upload"


def _sweep(folder: Path) -> None:
    """Remove uploads nobody finished mapping within a day."""
    cutoff = time.time() - UPLOAD_KEEP_S
    for stale in folder.glob("*.upload"):
        try:
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
        except OSError:
            log.warning("could not remove the stale upload %s", stale, exc_info=True)


def _store(request: HtmxHttpRequest, upload: Any, policy: Policy, set_name: str) -> str:
    folder = _folder()
    _sweep(folder)
    token = secrets.token_urlsafe(24)
    with (folder / f"{token}.upload").open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    uploads = dict(request.session.get(SESSION_KEY) or {})
    for old in sorted(uploads, key=lambda t: uploads[t].get("at", 0))[: max(0, len(uploads) - UPLOADS_PER_SESSION + 1)]:
        _forget(request, old, uploads)
    uploads[token] = {"policy": policy.pk, "set_name": set_name, "name": Path(upload.name or "upload").name[:200],
                      "size": upload.size, "at": time.time()}
    request.session[SESSION_KEY] = uploads
    return token


def _forget(request: HtmxHttpRequest, token: str, uploads: dict[str, Any] | None = None) -> None:
    uploads = uploads if uploads is not None else dict(request.session.get(SESSION_KEY) or {})
    uploads.pop(token, None)
    request.session[SESSION_KEY] = uploads
    if TOKEN_RE.fullmatch(token):
        _path(token).unlink(missing_ok=True)


def _get_upload_for_user(request: HtmxHttpRequest, token: str) -> tuple[dict[str, Any], Path]:
    """The upload behind `token`, if this session made it and it is still there; else 404."""
    upload = (request.session.get(SESSION_KEY) or {}).get(token)
    if not TOKEN_RE.fullmatch(token) or upload is None:
        raise Http404("No such upload in this session: upload the file again")
    path = _path(token)
    if not path.is_file():
        raise Http404("The upload is gone (uploads are kept for a day): upload the file again")
    return upload, path


# --- step 1: upload ------------------------------------------------------------------------------------


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _initial(request: HttpRequest) -> dict[str, Any]:
    initial: dict[str, Any] = {}
    set_id = request.GET.get("set", "")
    labeled_set = LabeledSet.objects.select_related("policy").filter(pk=set_id).first() if set_id.isdigit() else None
    if labeled_set is not None:
        initial = {"policy": labeled_set.policy.slug, "set_name": labeled_set.name}
    elif request.GET.get("policy"):
        initial = {"policy": request.GET["policy"]}
    return initial


@require_http_methods(["GET", "POST"])
@role_required(*WRITERS)
@csrf_exempt  # only so the size check below runs before anything reads the body; _upload checks the token
def upload(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "POST" and _content_length(request) > files.max_bytes() + MULTIPART_SLACK:
        return _upload_page(request, UploadForm(initial=_initial(request)), status=413,
                            error=f"The file is larger than {_megabytes(files.max_bytes())} (LABELED_SET_MAX_BYTES): "
                            "split it into smaller files. Nothing was uploaded.")
    return _upload(request)


@csrf_protect
def _upload(request: HtmxHttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _upload_page(request, UploadForm(initial=_initial(request)))
    form = UploadForm(request.POST, request.FILES)
    if form.is_valid():
        uploaded = form.cleaned_data["file"]
        policy = form.cleaned_data["policy"]
        try:
            scheme_version(policy)
            if uploaded.size > files.max_bytes():
                raise SetError(f"the file is larger than {_megabytes(files.max_bytes())} (LABELED_SET_MAX_BYTES)")
            table = files.read_table(uploaded, name=uploaded.name)
        except SetError as exc:
            form.add_error("file", f"{uploaded.name}: {exc}")
        else:
            set_name = form.cleaned_data["set_name"].strip() or _stem(table.name or uploaded.name)
            token = _store(request, uploaded, policy, set_name)
            return redirect("evaluations:import-mapping", token)
    return _upload_page(request, form, status=400)


def _stem(name: str) -> str:
    name = Path(name).name
    for suffix in (".gz", *files.EXTENSIONS):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def _megabytes(count: int) -> str:
    return f"{count / (1024 * 1024):,.0f} MB" if count >= 1024 * 1024 else f"{count:,} bytes"


def _upload_page(request: HtmxHttpRequest, form: UploadForm, status: int = 200, error: str = "") -> HttpResponse:
    slug = form["policy"].value()
    policy = Policy.objects.filter(slug=slug).first() if isinstance(slug, str) and slug else None
    context = {
        "form": form,
        "error": error,
        "policy": policy,
        "existing_sets": list(LabeledSet.objects.filter(policy=policy).order_by(Lower("name"))) if policy else [],
        "max_size": _megabytes(files.max_bytes()),
        "labels": allowed_labels(scheme_version(policy)) if policy and policy.latest_version() else [],
    }
    return render(request, "evaluations/import_upload.html", context, status=status)


# --- step 2: mapping, preview and import ----------------------------------------------------------------


def _column(data: Any, key: str, columns: list[str]) -> str:
    value = str(data.get(key, "") or "")
    return value if value in columns else ""


def _mapping_from(data: Any, table: Table) -> Mapping:
    """The mapping the form describes; unknown column names are dropped (check_mapping says what is missing)."""
    columns = table.columns
    mapping = Mapping(text=_column(data, "text", columns), prompt=_column(data, "prompt", columns),
                      response=_column(data, "response", columns), turns=_column(data, "turns", columns),
                      label=_column(data, "label", columns), prompt_label=_column(data, "prompt_label", columns))
    if data.get("label_mode") == "categories":
        mapping.label, mapping.prompt_label = "", ""
        mapping.category_columns = [c for c in data.getlist("category_columns") if c in columns]
        for i, column in enumerate(columns):
            code = str(data.get(f"code-{i}", "") or "").strip()
            if code and column in mapping.category_columns:
                mapping.category_codes[column] = code
    for i in range(int(data.get("value-count", 0) or 0) if str(data.get("value-count", "")).isdigit() else 0):
        key, target = data.get(f"value-key-{i}"), str(data.get(f"value-{i}", "") or "")
        if key is None or not target:
            continue
        mapping.values[str(key)] = SKIP if target == SKIP_CHOICE else target
    return mapping


def _shown(value: Any) -> str:
    text = cell_text(value)
    return text if len(text) <= CELL_PREVIEW else text[: CELL_PREVIEW - 1] + "…"


def _preview(table: Table, mapping: Mapping, version: PolicyVersion) -> tuple[list[dict[str, Any]], str]:
    """How the first rows will be read: each row's examples (kind, text, label, meaning) or why it is
    skipped or refused; and the mapping's own error, if it cannot be applied at all."""
    try:
        check_mapping(table, mapping, version)
    except SetError as exc:
        return [], str(exc)
    shown = []
    for number, row in table.head(PREVIEW_ROWS).records():
        entry: dict[str, Any] = {"row": number, "examples": [], "skipped": [], "error": ""}
        try:
            examples, skipped = read_row(row, number, mapping, version)
        except SetError as exc:
            entry["error"] = str(exc)
        else:
            entry["skipped"] = skipped
            for example in examples:
                turns = example.turns or []
                entry["examples"].append({
                    "kind": example.kind, "label": example.label, "violation": meaning(version, example.label)[1],
                    "text": _shown(example.content) if not turns else "",
                    "turns": [{"role": t["role"], "content": _shown(t["content"])} for t in turns],
                })
        shown.append(entry)
    return shown, ""


def _value_rows(table: Table, mapping: Mapping, version: PolicyVersion) -> list[dict[str, Any]]:
    rows = []
    for value, count in label_values(table, mapping):
        chosen = mapping.values.get(value)
        if chosen is None:
            chosen = guess_label(value, version) or ""
        rows.append({"value": value, "count": count, "chosen": SKIP_CHOICE if chosen == SKIP else chosen})
    return rows


def _mapping_context(table: Table, mapping: Mapping, version: PolicyVersion) -> dict[str, Any]:
    preview, mapping_error = _preview(table, mapping, version)
    return {
        "table": table,
        "mapping": mapping,
        "label_mode": "categories" if mapping.category_columns else "column",
        "first_rows": [(number, [_shown(row.get(c)) for c in table.columns])
                       for number, row in table.head(PREVIEW_ROWS).records()],
        "content_fields": [{"field": "text", "title": "Text", "value": mapping.text},
                           {"field": "prompt", "title": "Prompt", "value": mapping.prompt},
                           {"field": "response", "title": "Response", "value": mapping.response},
                           {"field": "turns", "title": "Turns", "value": mapping.turns}],
        "columns": table.columns,
        "column_rows": [{"index": i, "name": c, "checked": c in mapping.category_columns,
                         "code": mapping.category_codes.get(c) or guess_label(c, version) or ""}
                        for i, c in enumerate(table.columns)],
        "value_rows": _value_rows(table, mapping, version),
        "labels": allowed_labels(version),
        "categories": version.label_scheme == LabelScheme.CATEGORIES,
        "preview": preview,
        "mapping_error": mapping_error,
        "skip_choice": SKIP_CHOICE,
    }


def _set_url(labeled_set: LabeledSet) -> str:
    try:
        return labeled_set.get_absolute_url()
    except NoReverseMatch:
        return ""


@require_http_methods(["GET", "POST"])
@role_required(*WRITERS)
def import_mapping(request: HtmxHttpRequest, token: str) -> HttpResponse:
    upload, path = _get_upload_for_user(request, token)
    policy = get_object_or_404(Policy, pk=upload["policy"])
    context: dict[str, Any] = {"upload": upload, "policy": policy, "token": token,
                               "restart_url": f"{reverse('evaluations:import')}?policy={policy.slug}"}
    try:
        version = scheme_version(policy)
        table = files.read_table(path, name=upload["name"])
    except SetError as exc:
        context["error"] = str(exc)
        return render(request, "evaluations/import_mapping.html", context, status=400)
    context["version"] = version
    mapping = _mapping_from(request.POST, table) if request.method == "POST" else suggest_mapping(table, version)
    if request.method == "POST" and request.POST.get("action") == "import" and not request.htmx:
        try:
            imported = import_table(actor=request.user, policy=policy, table=table, mapping=mapping,
                                    set_name=upload["set_name"], source=upload["name"])
        except SetError as exc:
            context.update(_mapping_context(table, mapping, version), error=str(exc))
            return render(request, "evaluations/import_mapping.html", context, status=400)
        _forget(request, token)
        context.update(imported=imported, set_url=_set_url(imported.labeled_set))
        return render(request, "evaluations/import_mapping.html", context)
    context.update(_mapping_context(table, mapping, version))
    if request.htmx:
        return render(request, "evaluations/import_mapping.html#mapping", context)
    return render(request, "evaluations/import_mapping.html", context)
