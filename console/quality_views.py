"""Pages about how model answers were read: the shares per policy version and examples of each."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.roles import Role, role_required
from console import answer_quality
from console.models import ParseQuality
from policies_app.models import Policy, PolicyVersion

READERS = (Role.MODERATOR, Role.ADMIN, Role.POLICY_WRITER)


@require_GET
@role_required(*READERS)
def policy_answer_quality(request: HttpRequest, slug: str) -> HttpResponse:
    """The shares for every version of one policy: a fragment the policy page loads with htmx."""
    policy = get_object_or_404(Policy, slug=slug)
    rows = answer_quality.version_quality(policy_id=policy.pk, limit=50)
    return render(request, "console/_answer_quality.html", {"rows": rows, "policy": policy})


@require_GET
@role_required(*READERS)
def answer_examples(request: HttpRequest, version_id: int, quality: str) -> HttpResponse:
    """The most recent answers of a version read with one quality, each with why and how."""
    if quality not in ParseQuality.values:
        raise Http404("no such parse quality")
    version = get_object_or_404(PolicyVersion.objects.select_related("policy"), pk=version_id)
    context = {
        "version": version,
        "quality": ParseQuality(quality),
        "qualities": answer_quality.ORDER,
        "answers": list(answer_quality.examples(version, quality)),
        "limit": answer_quality.EXAMPLES_PER_PAGE,
    }
    return render(request, "console/answer_examples.html", context)
