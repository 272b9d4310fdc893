"""The import pages: upload, map the columns (first rows, suggestion, live preview), import; roles, the
upload kept per session, and errors that name row and column with nothing stored."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from evaluations.models import Example, LabeledSet
from tests.evaluations.shared_data import TEEN, need
from tests.factories import make_labeled_set, make_policy

pytestmark = pytest.mark.django_db

# A short disclaimer whose comma splits it into two cells, over rows of another width: not the header.
CSV = (b"Disclaimer: synthetic rows, not real users.,,,\ntext,verdict,notes\nhello there,ham,a\nbuy now,spam,b\n"
       b"unsure one,,c\n")


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.LABELED_SET_UPLOAD_DIR = tmp_path / "uploads"


def _text(response) -> str:
    """The page as text: tags stripped, entities decoded, white space collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def _upload(client: Client, version, data: bytes = CSV, name: str = "spam.csv", set_name: str = ""):
    return client.post(reverse("evaluations:import"), {
        "policy": version.policy.slug, "set_name": set_name, "file": SimpleUploadedFile(name, data)})


def _token(response) -> str:
    assert response.status_code == 302, response.content.decode()[:2000]
    return response["Location"].rstrip("/").rsplit("/", 1)[-1]


def _mapping_url(token: str) -> str:
    return reverse("evaluations:import-mapping", args=[token])


@pytest.mark.parametrize("who", ["moderator_client", "nobody_client"])
def test_people_who_do_not_write_policies_get_403_on_both_steps(request, who, writer_client):
    version = make_policy()
    token = _token(_upload(writer_client, version))
    client = request.getfixturevalue(who)
    assert client.get(reverse("evaluations:import")).status_code == 403
    assert _upload(client, version).status_code == 403
    assert client.get(_mapping_url(token)).status_code == 403
    assert client.post(_mapping_url(token), {"action": "import"}).status_code == 403
    assert not LabeledSet.objects.exists()


def test_the_upload_form_names_the_policy_and_its_existing_sets(writer_client):
    version = make_policy(name="Spam")
    make_labeled_set(version.policy, [("hi", "0")], name="Golden")
    page = writer_client.get(reverse("evaluations:import") + f"?policy={version.policy.slug}")
    assert page.status_code == 200
    text = _text(page)
    assert "Import a labelled set for Spam" in text and "Golden" in text and "Labels of Spam: 0, 1" in text
    labeled_set = LabeledSet.objects.get()
    from_set = writer_client.get(reverse("evaluations:import") + f"?set={labeled_set.pk}")
    assert 'value="Golden"' in from_set.content.decode()


def test_a_writer_uploads_maps_previews_and_imports_a_file(writer_client, writer, settings):
    version = make_policy(name="Spam")
    token = _token(_upload(writer_client, version))
    page = writer_client.get(_mapping_url(token))
    assert page.status_code == 200
    text = _text(page)
    # The first rows, the header found under the disclaimer, and the suggestion prefilled.
    assert "1 row above the header (row 2) skipped" in text and "hello there" in text
    body = page.content.decode()
    assert '<option value="text" selected>' in body and '<option value="verdict" selected>' in body
    # The value map offers the file's words, "ham" and "spam" read as 0 and 1.
    assert 'name="value-key-0" value="ham"' in body or 'name="value-key-1" value="ham"' in body
    assert "skipped: verdict is empty" in text

    form = {"text": "text", "label": "verdict", "label_mode": "column", "value-count": "2",
            "value-key-0": "ham", "value-0": "0", "value-key-1": "spam", "value-1": "1"}
    preview = writer_client.post(_mapping_url(token), form, headers={"HX-Request": "true"})
    assert preview.status_code == 200 and not preview.content.decode().lstrip().startswith("<!doctype")
    assert "buy now" in _text(preview) and "violation" in _text(preview)
    assert not LabeledSet.objects.exists()  # a preview stores nothing

    done = writer_client.post(_mapping_url(token), {**form, "action": "import"})
    assert done.status_code == 200
    text = _text(done)
    assert re.search(r"2\s+examples added", text) and re.search(r"0\s+already in the set", text)
    assert re.search(r"1\s+skipped for an empty label\s+\(row 5\)", text)
    labeled_set = LabeledSet.objects.get()
    assert labeled_set.name == "spam" and labeled_set.created_by == writer
    assert dict(labeled_set.examples.values_list("content", "label")) == {"hello there": "0", "buy now": "1"}
    assert AuditEvent.objects.filter(action="labeled_set.examples_added", actor=writer).count() == 1
    # The upload is gone once imported: the page cannot import it twice.
    assert writer_client.post(_mapping_url(token), {**form, "action": "import"}).status_code == 404
    assert not list(Path(settings.LABELED_SET_UPLOAD_DIR).glob("*.upload"))


def test_an_unknown_label_shows_row_column_and_value_and_stores_nothing(writer_client):
    version = make_policy()
    token = _token(_upload(writer_client, version, b"text,label\nhello,0\nbye,perhaps\n"))
    events = AuditEvent.objects.count()
    refused = writer_client.post(_mapping_url(token), {"text": "text", "label": "label", "action": "import"})
    assert refused.status_code == 400
    assert "Nothing was imported: row 3, column 'label': 'perhaps' is not a label" in _text(refused)
    assert not LabeledSet.objects.exists() and AuditEvent.objects.count() == events
    # The upload is still there: map the value and import.
    fixed = writer_client.post(_mapping_url(token), {"text": "text", "label": "label", "action": "import",
                                                     "value-count": "1", "value-key-0": "perhaps", "value-0": "1"})
    assert fixed.status_code == 200 and Example.objects.count() == 2


def test_a_file_that_cannot_be_read_is_refused_at_upload_naming_row_and_column(writer_client, settings):
    version = make_policy()
    refused = _upload(writer_client, version, b"text,label\nok,0\n" + "d\xe9j\xe0 vu,1\n".encode("cp1252"))
    assert refused.status_code == 400
    text = _text(refused)
    assert "row 3, column 'text': the file is not UTF-8" in text and "Save the file as UTF-8" in text
    assert "The submitted file is empty" in _text(_upload(writer_client, version, b""))
    assert "the file is empty" in _text(_upload(writer_client, version, b"\n \n"))
    assert not list(Path(settings.LABELED_SET_UPLOAD_DIR).glob("*.upload"))


def test_an_upload_past_the_size_limit_is_refused_before_it_is_read(writer_client, settings):
    settings.LABELED_SET_MAX_BYTES = 10
    version = make_policy()
    refused = _upload(writer_client, version, b"text,label\n" + b"x,0\n" * 400_000)
    assert refused.status_code == 413 and "larger than" in _text(refused)


def test_an_upload_belongs_to_the_session_that_made_it(writer, writer_client, admin_client_):
    version = make_policy()
    token = _token(_upload(writer_client, version))
    assert admin_client_.get(_mapping_url(token)).status_code == 404  # another session, even an admin's
    other = Client()
    other.force_login(writer)  # the same person in another browser
    assert other.get(_mapping_url(token)).status_code == 404
    assert writer_client.get("/evaluations/import/..%2F..%2Fetc%2Fpasswd/").status_code == 404
    assert writer_client.get(_mapping_url("A" * 32)).status_code == 404


def test_an_admin_imports_a_teen_safety_file_as_completions_and_prompts(admin_client_):
    version = make_policy(text=(need(TEEN) / "example_policies/graphic-sexual-content/policy.md").read_text(),
                          label_scheme="categories", labels=["GS0", "GS1", "GS2"], output_format="label")
    data = (TEEN / "datasets/graphic-sexual-content.csv").read_bytes()
    token = _token(_upload(admin_client_, version, data, name="graphic-sexual-content.csv"))
    page = admin_client_.get(_mapping_url(token))
    body = page.content.decode()
    assert '<option value="Example Prompt" selected>' in body and '<option value="Generation Label" selected>' in body
    assert '<option value="Prompt label" selected>' in body
    form = {"prompt": "Example Prompt", "response": "Example Generation", "label": "Generation Label",
            "prompt_label": "Prompt label", "label_mode": "column", "action": "import"}
    done = admin_client_.post(_mapping_url(token), form)
    assert done.status_code == 200, _text(done)[:3000]
    labeled_set = LabeledSet.objects.get(name="graphic-sexual-content")
    assert labeled_set.examples.filter(kind="completion").count() == 9
    assert labeled_set.examples.filter(kind="message").count() == 8  # one prompt label is empty
    assert re.search(r"1\s+skipped for an empty label\s+\(row 9\)", _text(done))


def test_choosing_category_columns_offers_each_columns_category(writer_client):
    version = make_policy(text="# T\n\n## OK (TX0 - fine)\n\n## Harassment (TX1)\n\n## Violence (TX3)\n",
                          label_scheme="categories", labels=["TX0", "TX1", "TX3"], output_format="label")
    token = _token(_upload(writer_client, version, b"text,harass,violent\nhi,0,0\nidiot,1,0\nhurt,0,1\n"))
    page = writer_client.get(_mapping_url(token))
    assert 'name="category_columns" value="harass"' in page.content.decode()
    form = {"text": "text", "label_mode": "categories", "category_columns": ["harass", "violent"],
            "code-1": "TX1", "code-2": "TX3"}
    preview = writer_client.post(_mapping_url(token), form, headers={"HX-Request": "true"})
    assert "TX3" in _text(preview) and "names no category" not in _text(preview)
    done = writer_client.post(_mapping_url(token), {**form, "action": "import"})
    assert done.status_code == 200
    assert dict(Example.objects.values_list("content", "label")) == {"hi": "TX0", "idiot": "TX1", "hurt": "TX3"}


def test_the_upload_still_wants_the_csrf_token(writer):
    version = make_policy()
    client = Client(enforce_csrf_checks=True)
    client.force_login(writer)
    assert _upload(client, version).status_code == 403
    page = client.get(reverse("evaluations:import"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    accepted = client.post(reverse("evaluations:import"), {
        "policy": version.policy.slug, "csrfmiddlewaretoken": token, "file": SimpleUploadedFile("a.csv", CSV)})
    assert accepted.status_code == 302
