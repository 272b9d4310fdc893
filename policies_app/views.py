"""Pages for policy writers: list, write, edit, compare, publish, roll back, retire, preview prompts.

Every write goes through policies_app.services; these views only collect input and show results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from accounts.roles import Role, has_role, role_required
from policies_app import diff, gates, services
from policies_app.forms import DescriptionForm, PolicyCreateForm, PolicyEditForm, PreviewForm
from policies_app.models import RULE_ID_RE, ContentKind, Policy, PolicyVersion, VersionStatus
from policies_app.services import PolicyError
from safeguard import Content, PolicySpec, Turn, count_tokens, render_prompt
from safeguard.instructions import instruction_warnings
from safeguard.vocab import get_encoding

WRITERS = (Role.POLICY_WRITER, Role.ADMIN)


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


# gpt-oss-safeguard works best with policies of about this many tokens (OpenAI's guide for the model).
RECOMMENDED_POLICY_TOKENS = (400, 600)

# Paths under /policies/ that are pages, not policies: a policy may not take them as its slug.
RESERVED_SLUGS = {"new"}


# --- lookups --------------------------------------------------------------------------------------


def _get_policy_for_user(request: HtmxHttpRequest, slug: str) -> Policy:
    # Every writer may see and change every policy; the role decorator has already checked the role.
    return get_object_or_404(Policy, slug=slug)


def _get_version_for_user(request: HtmxHttpRequest, slug: str, number: int) -> tuple[Policy, PolicyVersion]:
    policy = _get_policy_for_user(request, slug)
    version = get_object_or_404(PolicyVersion.objects.select_related("author"), policy=policy, number=number)
    return policy, version


# --- display helpers ------------------------------------------------------------------------------


def highlight_rules(text: str) -> SafeString:
    """The text, HTML-escaped, with each rule ID wrapped in <mark class="rule">.

    The first mention of a rule carries id="rule-<id>" so it can be linked to (later mentions would
    repeat the id, which HTML forbids).
    """
    pieces: list[str] = []
    seen: set[str] = set()
    position = 0
    for match in RULE_ID_RE.finditer(text):
        rule = match.group(1)
        pieces.append(escape(text[position : match.start()]))
        if rule in seen:
            pieces.append(format_html('<mark class="rule">{}</mark>', rule))
        else:
            seen.add(rule)
            pieces.append(format_html('<mark class="rule" id="rule-{}">{}</mark>', rule, rule))
        position = match.end()
    pieces.append(escape(text[position:]))
    return mark_safe("".join(pieces))  # every piece is escaped or built by format_html


@dataclass(frozen=True, slots=True)
class TokenMeter:
    count: int
    low: int
    high: int

    @property
    def state(self) -> str:
        if self.count < self.low:
            return "under"
        return "over" if self.count > self.high else "ok"

    @property
    def in_band(self) -> bool:
        return self.state == "ok"


def _policy_meter(text: str) -> TokenMeter:
    low, high = RECOMMENDED_POLICY_TOKENS
    return TokenMeter(count=count_tokens(text), low=low, high=high)


def _version_context(policy: Policy, version: PolicyVersion) -> dict[str, Any]:
    """What a page showing one version's text needs (detail and version pages)."""
    return {
        "version": version,
        "highlighted": highlight_rules(version.text),
        "meter": _policy_meter(version.text),
        "latest": policy.latest_version(),
        "published": policy.published_version(),
        "instruction_warnings": instruction_warnings(version.as_spec()),
    }


def _done(request: HtmxHttpRequest, url: str) -> HttpResponse:
    """After a POST: a full redirect, or for htmx a client-side one (a plain 302 would be swapped in)."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


# --- list and create ------------------------------------------------------------------------------


@require_GET
@role_required(*WRITERS)
@vary_on_headers("HX-Request")
def policy_list(request: HtmxHttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    policies = Policy.objects.matching(query).with_version_summary()
    context = {"policies": policies, "query": query}
    # The search box pushes its URL; going back to it is a history restore, which needs the whole page.
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "policies/policy_list.html#policy-table", context)
    return render(request, "policies/policy_list.html", context)


def _slug_for(name: str) -> str:
    """A slug for a new policy when the service's own choice would collide with a page path."""
    base = slugify(name.strip())[:100]
    if base not in RESERVED_SLUGS:
        return ""  # the service picks a free slug
    slug, n = f"{base}-policy", 2
    while Policy.objects.filter(slug=slug).exists():
        slug, n = f"{base}-policy-{n}", n + 1
    return slug


@require_http_methods(["GET", "POST"])
@role_required(*WRITERS)
def policy_create(request: HtmxHttpRequest) -> HttpResponse:
    form = PolicyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            version = services.create_policy(
                actor=request.user, slug=_slug_for(form.cleaned_data["name"]), **form.service_kwargs()
            )
        except PolicyError as exc:
            form.add_policy_error(exc)
        else:
            messages.success(request, f"Policy {version.policy.name} created as draft version 1")
            return redirect(version.policy)
    return render(request, "policies/policy_create.html", {"form": form})


# --- one policy -----------------------------------------------------------------------------------


@require_GET
@role_required(*WRITERS)
def policy_detail(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    policy = _get_policy_for_user(request, slug)
    latest = policy.latest_version()
    context = {"policy": policy, **_version_context(policy, latest)} if latest else {"policy": policy}
    return render(request, "policies/policy_detail.html", context)


@require_http_methods(["GET", "POST"])
@role_required(*WRITERS)
def policy_edit(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    policy = _get_policy_for_user(request, slug)
    latest = policy.latest_version()
    if latest is None:  # every policy is created with a version; this one's rows are damaged
        raise Http404("This policy has no version to edit")
    stale = False
    if request.method == "POST":
        form = PolicyEditForm(request.POST)
        if form.is_valid():
            base = form.cleaned_data["base_number"]
            try:
                version = services.save_version(
                    actor=request.user, policy=policy, base_number=base, **form.service_kwargs()
                )
            except PolicyError as exc:
                form.add_policy_error(exc)
                latest = policy.latest_version() or latest
                stale = latest.number != base
            else:
                messages.success(request, f"Saved as draft version {version.number}: publish it when it is ready")
                return redirect(version)
    else:
        form = PolicyEditForm(initial={**PolicyEditForm.initial_from(latest), "base_number": latest.number})
    base_number = form["base_number"].value()
    # The warnings follow what the writer typed once it is valid, so a fix shows before the save.
    spec = latest.as_spec()
    typed = getattr(form, "cleaned_data", {})
    if form.is_bound and all(name in typed for name in ("text", "label_scheme", "labels", "output_format",
                                                        "reasoning_effort", "change_note")):
        data = form.service_kwargs()
        try:
            labels = services.clean_labels(data["label_scheme"], data["labels"])
        except PolicyError:
            labels = []  # the form shows that error; the warnings then follow the rest of what was typed
        spec = PolicySpec(text=data["text"], label_scheme=data["label_scheme"], labels=tuple(labels),
                          output_format=data["output_format"], reasoning_effort=data["reasoning_effort"])
    context = {"policy": policy, "form": form, "latest": latest, "stale": stale, "base_number": base_number,
               "instruction_warnings": instruction_warnings(spec)}
    return render(request, "policies/policy_edit.html", context)


@require_http_methods(["GET", "POST"])
@role_required(*WRITERS)
def policy_description(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    policy = _get_policy_for_user(request, slug)
    form = DescriptionForm(request.POST or None, initial={"description": policy.description})
    if request.method == "POST" and form.is_valid():
        try:
            services.update_description(actor=request.user, policy=policy, description=form.cleaned_data["description"])
        except PolicyError as exc:
            form.add_error("description", " ".join(exc.messages))
        else:
            messages.success(request, f"Description of {policy.name} saved")
            return redirect(policy)
    return render(request, "policies/policy_description.html", {"policy": policy, "form": form})


@require_GET
@role_required(*WRITERS)
def policy_history(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    policy = _get_policy_for_user(request, slug)
    versions = list(policy.versions.select_related("author").order_by("-number"))
    context = {
        "policy": policy,
        "versions": versions,
        "latest": versions[0] if versions else None,
        "published": next((v for v in versions if v.status == VersionStatus.PUBLISHED), None),
        # Preselect the two newest versions for the comparison.
        "diff_a": versions[1].number if len(versions) > 1 else None,
        "diff_b": versions[0].number if versions else None,
    }
    return render(request, "policies/policy_history.html", context)


@require_GET
@role_required(*WRITERS)
def version_detail(request: HtmxHttpRequest, slug: str, number: int) -> HttpResponse:
    policy, version = _get_version_for_user(request, slug, number)
    previous = policy.versions.filter(number__lt=number).order_by("-number").first()
    context = {"policy": policy, "previous": previous, **_version_context(policy, version)}
    return render(request, "policies/version_detail.html", context)


# --- compare --------------------------------------------------------------------------------------


def _diff_version(policy: Policy, raw: str, name: str) -> PolicyVersion:
    """The version of `policy` numbered `raw`; only numbers within this policy are accepted."""
    raw = raw.strip()
    if not raw:
        raise PolicyError(f"Choose a version to compare ({name} is missing)", name)
    if not raw.isdigit():
        raise PolicyError(f"{name}={raw!r} is not a version number", name)
    version = policy.versions.select_related("author").filter(number=int(raw)).first()
    if version is None:
        raise PolicyError(f"{policy.name} has no version {int(raw)}", name)
    return version


@require_GET
@role_required(*WRITERS)
def policy_diff(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    policy = _get_policy_for_user(request, slug)
    context: dict[str, Any] = {
        "policy": policy,
        "versions": policy.versions.order_by("-number").only("number", "status", "created_at"),
        "a_raw": request.GET.get("a", ""),
        "b_raw": request.GET.get("b", ""),
    }
    try:
        old = _diff_version(policy, context["a_raw"], "a")
        new = _diff_version(policy, context["b_raw"], "b")
        if old.pk == new.pk:
            raise PolicyError(f"Both sides are version {old.number}: choose two different versions")
    except PolicyError as exc:
        context["error"] = " ".join(exc.messages)
        return render(request, "policies/policy_diff.html", context, status=400)
    context.update(
        old=old,
        new=new,
        text_diff=diff.side_by_side(old.text, new.text),
        settings_changes=diff.changed_settings(old, new),
    )
    return render(request, "policies/policy_diff.html", context)


# --- publish, roll back, retire -------------------------------------------------------------------


def _posted_version(request: HtmxHttpRequest, policy: Policy, version: PolicyVersion) -> None:
    """Refuse a form whose `version` is not the version in the URL (a stale or tampered form)."""
    raw = request.POST.get("version", "").strip()
    if not raw.isdigit():
        raise PolicyError("The form did not say which version it acts on: nothing was changed")
    posted = PolicyVersion.objects.select_related("policy").filter(pk=int(raw)).first()
    if posted is None:
        raise PolicyError("The form names a version that does not exist: nothing was changed")
    if posted.policy_id != policy.pk:
        raise PolicyError(
            f"{posted} belongs to the policy {posted.policy.name}, not {policy.name}: nothing was changed"
        )
    if posted.pk != version.pk:
        raise PolicyError(f"The form names version {posted.number} but was sent for version {version.number}: "
                          "nothing was changed")


def _version_action(request: HtmxHttpRequest, slug: str, number: int, act: Any, success: str) -> HttpResponse:
    policy, version = _get_version_for_user(request, slug, number)
    try:
        _posted_version(request, policy, version)
        result = act(actor=request.user, policy=policy, version=version)
    except PolicyError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, success.format(version=version, result=result))
    return _done(request, policy.get_absolute_url())


@require_http_methods(["GET", "POST"])
@role_required(*WRITERS)
def version_publish(request: HtmxHttpRequest, slug: str, number: int) -> HttpResponse:
    """GET: the evidence for publishing (the version's runs beside the published version's, and what
    blocks); POST: publish, with an admin's reason when something blocks."""
    if request.method == "POST":
        reason = request.POST.get("override_reason", "")

        def publish(**kwargs: Any) -> PolicyVersion:
            return services.publish_version(override_reason=reason, **kwargs)

        return _version_action(request, slug, number, publish,
                               "Version {version.number} is published: new items are classified against it")
    policy, version = _get_version_for_user(request, slug, number)
    evidence = gates.evidence_for(version)
    return render(request, "policies/version_publish.html", {
        "policy": policy, "version": version, "published": policy.published_version(), "evidence": evidence,
        "blocking": [row for row in evidence if row.blocking], "is_admin": has_role(request.user, Role.ADMIN),
    })


@require_POST
@role_required(*WRITERS)
def version_rollback(request: HtmxHttpRequest, slug: str, number: int) -> HttpResponse:
    return _version_action(
        request, slug, number, services.rollback_to,
        "Rolled back: version {result.number}, a copy of version {version.number}, is published",
    )


@require_POST
@role_required(*WRITERS)
def version_retire(request: HtmxHttpRequest, slug: str, number: int) -> HttpResponse:
    return _version_action(request, slug, number, services.retire_version, "Version {version.number} is retired")


# --- prompt preview -------------------------------------------------------------------------------


def _sample_content(kind: str, sample: str) -> Content:
    """The preview sample as engine content; a conversation is written one `role: content` per line."""
    if kind != ContentKind.CONVERSATION:
        if not sample.strip():
            raise PolicyError("Write a sample to see the prompt the model would read", "sample")
        return Content(kind=kind, text=sample)
    turns = []
    for n, line in enumerate(sample.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        role, colon, content = line.partition(":")
        if not colon or not role.strip() or " " in role.strip():
            raise PolicyError(f"Line {n} is not a turn: write one turn per line as role: content", "sample")
        turns.append(Turn(role=role.strip(), content=content.strip()))
    if not turns:
        raise PolicyError("A conversation needs at least one turn, written as role: content", "sample")
    return Content(kind=kind, turns=tuple(turns))


def _prompt_segments(rendered: Any) -> list[tuple[bool, str]]:
    """The decoded prompt as (is_special_token, text) pieces, split by token id, not by text: a user
    who types "<|end|>" gets ordinary text tokens, and the page must not show those as special."""
    encoding = get_encoding()
    segments: list[tuple[bool, str]] = []
    run: list[int] = []
    for token in rendered.token_ids:
        if encoding.is_special_token(token):
            if run:
                segments.append((False, encoding.decode(run)))
                run = []
            segments.append((True, encoding.decode([token])))
        else:
            run.append(token)
    if run:
        segments.append((False, encoding.decode(run)))
    return segments


@require_http_methods(["GET", "POST"])
@role_required(*WRITERS)
def prompt_preview(request: HtmxHttpRequest, slug: str, number: int) -> HttpResponse:
    policy, version = _get_version_for_user(request, slug, number)
    if request.method == "POST":
        form = PreviewForm(request.POST)
    else:
        form = PreviewForm({"kind": ContentKind.MESSAGE, "sample": "Replace this with a message you want to test."})
    context: dict[str, Any] = {"policy": policy, "version": version, "form": form,
                               "instruction_warnings": instruction_warnings(version.as_spec())}
    if form.is_valid():
        try:
            content = _sample_content(form.cleaned_data["kind"], form.cleaned_data["sample"])
        except PolicyError as exc:
            form.add_error("sample", " ".join(exc.messages))
        else:
            rendered = render_prompt(version.as_spec(), content)
            limit = settings.SAFEGUARD_CONTEXT_TOKENS - settings.SAFEGUARD_MAX_TOKENS
            low, high = RECOMMENDED_POLICY_TOKENS
            context.update(
                rendered=rendered,
                segments=_prompt_segments(rendered),
                meter=TokenMeter(count=rendered.policy_tokens, low=low, high=high),
                limit=limit,
                output_budget=settings.SAFEGUARD_MAX_TOKENS,
                context_tokens=settings.SAFEGUARD_CONTEXT_TOKENS,
                too_long=rendered.total_tokens > limit,
            )
    if request.htmx:
        return render(request, "policies/prompt_preview.html#result", context)
    return render(request, "policies/prompt_preview.html", context)
