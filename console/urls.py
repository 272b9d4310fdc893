"""The project's URLconf: the review app, the policies app, the evaluation workbench, enforcement and
appeals, the API, login and the admin.

RQ's own dashboard is not mounted: some of its actions failed and none were audited; queue depths are
on /readyz, /metrics and the review dashboard instead."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView

urlpatterns = [
    path("", include("console.app_urls")),
    path("policies/", include("policies_app.urls")),
    path("evaluations/", include("evaluations.urls")),
    path("enforcement/", include("enforcement.urls")),
    path("appeals/", include("enforcement.appeal_urls")),
    path("", include("api.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The audit trail moved from the console app to the audit app: old admin links keep working.
    re_path(r"^admin/console/auditevent/(?P<rest>.*)$",
            RedirectView.as_view(url="/admin/audit/auditevent/%(rest)s", permanent=True, query_string=True)),
    path("admin/", admin.site.urls),
]


