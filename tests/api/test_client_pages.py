"""The API client pages: scopes, expiry and allowed policies round-trip through the forms, every
change is audited, the list flags expired and expiring tokens, and a new token is shown once."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from api.auth import hash_token
from api.models import ApiClient, Scope
from audit.models import AuditEvent
from tests.api.helpers import JsonCaller

NEW = "/integrations/clients/new/"
FORMAT = "%Y-%m-%dT%H:%M"


def _edit_form_data(response) -> dict:
    """What the edit page's form would post back unchanged, from the form the page rendered."""
    form = response.context["form"]
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if name == "expires_at":
            data[name] = field.widget.format_value(field.prepare_value(value)) or ""
        elif isinstance(value, list):
            data[name] = [getattr(v, "pk", v) for v in value]
        else:
            data[name] = "" if value is None else value
    return data


def test_the_new_client_form_offers_every_scope_and_the_default_expiry(admin_client_, spam, settings):
    settings.API_TOKEN_DEFAULT_DAYS = 90
    shown = {(timezone.now() + timedelta(days=90)).strftime(FORMAT)}  # either side of a minute's turn
    page = admin_client_.get(NEW)
    shown.add((timezone.now() + timedelta(days=90)).strftime(FORMAT))
    assert page.context["form"]["scopes"].value() == Scope.values
    html = page.content.decode()
    assert any(f'value="{value}"' in html for value in shown)
    for scope in Scope.values:
        assert f'value="{scope}"' in html
    assert 'type="datetime-local"' in html
    assert 'name="allowed_policies"' in html


def test_an_admin_creates_a_scoped_expiring_client_limited_to_its_policies(admin_client_, admin_user, spam,
                                                                           other_policy):
    expires = (timezone.now() + timedelta(days=10)).replace(second=0, microsecond=0)
    response = admin_client_.post(NEW, {
        "name": "Reader", "scopes": ["read"], "expires_at": expires.strftime(FORMAT),
        "allowed_policies": [spam.policy.pk, other_policy.policy.pk], "default_policies": [spam.policy.pk],
    })
    assert response.status_code == 201
    token = response.context["token"]
    assert token.encode() in response.content
    client = ApiClient.objects.get(name="Reader")
    assert (client.scopes, client.expires_at, client.token_hash) == (["read"], expires, hash_token(token))
    assert set(client.allowed_policies.all()) == {spam.policy, other_policy.policy}
    event = AuditEvent.objects.get(action="api_client.created", object_id=str(client.pk))
    assert event.actor == admin_user
    assert (event.after["scopes"], event.after["allowed_policies"]) == (["read"], ["harassment", "spam"])
    assert event.after["expires_at"] == expires.isoformat().replace("+00:00", "Z")
    # The token does what its scope says and nothing more.
    assert JsonCaller(token).get("/api/v1/policies").status_code == 200
    assert JsonCaller(token).post("/api/v1/items", {"content": "hi"}).status_code == 403


def test_the_new_client_form_refuses_no_scopes_and_a_past_expiry_beside_the_fields(admin_client_, spam):
    past = (timezone.now() - timedelta(days=1)).strftime(FORMAT)
    response = admin_client_.post(NEW, {"name": "Nope", "scopes": [], "expires_at": past})
    assert response.status_code == 200
    assert "scopes" in response.context["form"].errors
    response = admin_client_.post(NEW, {"name": "Nope", "scopes": ["read"], "expires_at": past})
    assert "in the future" in str(response.context["form"].errors["expires_at"])
    response = admin_client_.post(NEW, {"name": "Nope", "scopes": ["read"], "default_policies": [spam.policy.pk]})
    assert "not among the allowed policies" in str(response.context["form"].errors["default_policies"])
    assert not ApiClient.objects.filter(name="Nope").exists()


def test_the_edit_form_round_trips_unchanged_without_an_audit_event(admin_client_, acme):
    client, _ = acme
    page = admin_client_.get(client.get_absolute_url())
    before = AuditEvent.objects.count()
    response = admin_client_.post(client.get_absolute_url(), _edit_form_data(page))
    assert response.status_code == 302, response.context["form"].errors
    assert AuditEvent.objects.count() == before
    assert ApiClient.objects.get(pk=client.pk).expires_at == client.expires_at


def test_an_admin_changes_scopes_expiry_and_policies_and_the_change_is_audited(admin_client_, admin_user, acme,
                                                                               other_policy):
    client, _ = acme
    data = _edit_form_data(admin_client_.get(client.get_absolute_url()))
    expires = (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    data.update(scopes=["submit", "moderations"], expires_at=expires.strftime(FORMAT),
                allowed_policies=[p.pk for p in (*client.allowed_policies.all(), other_policy.policy)])
    response = admin_client_.post(client.get_absolute_url(), data)
    assert response.status_code == 302
    client.refresh_from_db()
    assert (client.scopes, client.expires_at) == (["submit", "moderations"], expires)
    event = AuditEvent.objects.get(action="api_client.changed")
    assert event.actor == admin_user
    assert (event.before["scopes"], event.after["scopes"]) == (["submit", "read", "moderations", "erase",
                                                                "appeals"],
                                                               ["submit", "moderations"])
    assert (event.before["allowed_policies"], event.after["allowed_policies"]) == (["spam"], ["harassment", "spam"])
    assert event.after["expires_at"] == expires.isoformat().replace("+00:00", "Z")
    data["expires_at"] = ""
    admin_client_.post(client.get_absolute_url(), data)
    assert ApiClient.objects.get(pk=client.pk).expires_at is None  # empty: never


def test_the_client_list_shows_expiry_and_flags_expired_and_expiring_tokens(admin_client_, admin_user, acme):
    client, _ = acme
    page = admin_client_.get("/integrations/clients/").content.decode()
    assert client.expires_at.strftime("%Y-%m-%d %H:%M") in page
    assert "pill good" in page and "expired" not in page
    ApiClient.objects.filter(pk=client.pk).update(expires_at=timezone.now() + timedelta(days=3))
    assert "expires in 2" in admin_client_.get("/integrations/clients/").content.decode()
    ApiClient.objects.filter(pk=client.pk).update(expires_at=timezone.now() - timedelta(days=1))
    page = admin_client_.get("/integrations/clients/").content.decode()
    assert '<span class="pill bad"' in page and ">expired<" in page
    ApiClient.objects.filter(pk=client.pk).update(expires_at=None)
    assert "never" in admin_client_.get("/integrations/clients/").content.decode()


def test_an_admin_issues_a_new_token_shown_once_and_audited(admin_client_, admin_user, acme, spam):
    client, old_token = acme
    ApiClient.objects.filter(pk=client.pk).update(expires_at=timezone.now() - timedelta(days=1))
    assert "Issue a new token" in admin_client_.get(client.get_absolute_url()).content.decode()
    response = admin_client_.post(f"{client.get_absolute_url()}rotate/")
    assert response.status_code == 200
    token = response.context["token"]
    assert token.encode() in response.content
    assert token.encode() not in admin_client_.get(client.get_absolute_url()).content
    assert JsonCaller(old_token).get("/api/v1/policies").status_code == 401
    assert JsonCaller(token).get("/api/v1/policies").status_code == 200
    event = AuditEvent.objects.get(action="api_client.token_rotated")
    assert event.actor == admin_user and token not in str(event.after)


def test_a_revoked_client_gets_no_new_token_from_the_page(admin_client_, admin_user, acme):
    client, _ = acme
    admin_client_.post(f"{client.get_absolute_url()}revoke/")
    response = admin_client_.post(f"{client.get_absolute_url()}rotate/", follow=True)
    assert "revoked for good" in response.content.decode()
    assert "token" not in response.context or response.context.get("token") is None
    assert admin_client_.get(f"{client.get_absolute_url()}rotate/").status_code == 405


def test_only_admins_issue_new_tokens(moderator_client, acme):
    client, token = acme
    assert moderator_client.post(f"{client.get_absolute_url()}rotate/").status_code == 403
    assert ApiClient.objects.get(pk=client.pk).token_hash == hash_token(token)
