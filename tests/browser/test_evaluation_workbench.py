"""The evaluation workbench in a real browser: daphne, the real reasoner worker on the scripted engine
(taking evaluation results two at a time, so a run's progress moves in steps), and chromium."""

from __future__ import annotations

import csv
import os
import re
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.roles import Role, set_roles
from evaluations import runs
from evaluations.models import EvaluationRun, LabeledSet, RunStatus
from tests.browser import live
from tests.evaluations.running import WORD, two_versions

# Playwright's sync API runs an event loop in this thread; the ORM calls made in between are ordinary
# blocking calls, which Django's async-safety check would otherwise refuse.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000
SLOW = "#slow=0.3"  # each example takes the scripted model 0.3 s, so the bar is seen moving


@pytest.fixture(scope="module")
def console_url(django_db_setup, tmp_path_factory):
    with live.console_processes(database=connection.settings_dict, workdir=tmp_path_factory.mktemp("workbench"),
                                extra_env={"SAFEGUARD_EVAL_BATCH_SIZE": "2", "SAFEGUARD_EVAL_QUIET_S": "1e9"}) as url:
        yield url


def _wait_until_done(run: EvaluationRun, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status == RunStatus.DONE:
            return
        time.sleep(0.2)
    raise AssertionError(f"run #{run.pk} did not finish within {timeout} s ({run.status})")


def test_a_policy_writer_imports_a_set_runs_it_watches_it_finish_live_and_compares_it_with_the_earlier_run(
        console_url, browser, tmp_path):
    Group.objects.get_or_create(name=Role.POLICY_WRITER.value)
    writer = get_user_model().objects.create_user(username="wendy")
    set_roles(actor=None, user=writer, roles={Role.POLICY_WRITER})
    v1, v2 = live.call(two_versions, name="Spam")
    rows = [
        (f"you won the {WORD}, claim it #if={WORD} {SLOW}", "1"),
        (f"our office {WORD} raised money for charity #if={WORD} {SLOW}", "0"),
        (f"the {WORD} prize is yours #if={WORD} {SLOW}", "1"),
        (f"free money, click here {SLOW}", "1"),
        (f"lunch at noon? {SLOW}", "0"),
        (f"see you tomorrow {SLOW}", "0"),
    ]
    upload = tmp_path / "lottery-spam.csv"
    with upload.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([("message", "is_spam"), *rows])

    client = Client()
    client.force_login(writer)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME]
                          .value, "url": console_url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    # Failed loads are listed with their address by the response handler (the browser's own line has none).
    page.on("console", lambda message: errors.append(message.text) if message.type == "error"
            and not message.text.startswith("Failed to load resource") else None)
    page.on("response", lambda response: errors.append(f"HTTP {response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith("/favicon.ico") else None)
    try:
        # The writer imports the set: upload, check the suggested mapping, import.
        page.goto(f"{console_url}{reverse('evaluations:import')}?policy={v1.policy.slug}")
        page.set_input_files('input[type="file"]', str(upload))
        page.fill('input[name="set_name"]', "Lottery spam")
        page.get_by_role("button", name="Upload and map the columns").click()
        page.get_by_role("button", name="Import every row").click()
        page.get_by_role("link", name="Open Lottery spam").click()
        labeled_set = LabeledSet.objects.get(policy=v1.policy, name="Lottery spam")
        assert labeled_set.examples.count() == 6
        earlier = live.call(runs.start_run, actor=None, labeled_set=labeled_set, version=v1,
                       note="before the lottery rule")
        _wait_until_done(earlier)

        # From the policy to its workbench, to the set, to the start page.
        page.goto(f"{console_url}{v1.policy.get_absolute_url()}")
        page.get_by_role("link", name="Evaluations").click()
        page.locator("#sets").get_by_role("link", name="Lottery spam").click()
        expect(page.locator("#examples")).to_contain_text("you won the lottery")
        page.get_by_role("link", name="Start a run").first.click()
        page.select_option('select[name="version"]', "2")
        expect(page.locator("#estimate")).to_contain_text("Prompt tokens")
        page.fill('input[name="note"]', "with the lottery rule")
        page.get_by_role("button", name="Start the run").click()
        page.wait_for_url(re.compile(r"/evaluations/runs/\d+/$"), timeout=WAIT_MS)
        run = EvaluationRun.objects.exclude(pk=earlier.pk).get()

        # The bar moves to 100% over the WebSocket: the page is never reloaded (the marker survives).
        page.evaluate("window.__not_reloaded = true")
        expect(page.locator('#live-state[data-state="open"]')).to_be_visible(timeout=WAIT_MS)
        seen = set()
        deadline = time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            seen.add(page.locator("#run-progress").get_attribute("data-percent"))
            if "100.0" in seen:
                break
            time.sleep(0.05)
        assert "100.0" in seen, seen
        assert seen - {"0.0", "100.0"}, f"the bar never showed a step between 0 and 100%: {seen}"
        expect(page.locator("#run-progress")).to_contain_text("6 of 6 classified")
        expect(page.locator("#run-metrics")).to_contain_text("Accuracy", timeout=WAIT_MS)
        expect(page.locator("#run-cancel button")).to_have_count(0)
        expect(page.locator("#run-results")).to_contain_text("you won the lottery", timeout=WAIT_MS)
        assert page.evaluate("window.__not_reloaded") is True

        # The comparison with the earlier run: the flipped example with both reasonings side by side.
        page.select_option('select[name="a"]', str(earlier.pk))
        page.get_by_role("button", name="Compare").click()
        page.wait_for_url(re.compile(r"/evaluations/compare/\?"), timeout=WAIT_MS)
        flip = page.locator(".flip").filter(has_text="our office lottery")
        expect(flip).to_contain_text("right → wrong")
        expect(flip.locator(".side-a pre.reasoning")).to_contain_text(f"does not mention {WORD}")
        expect(flip.locator(".side-b pre.reasoning")).to_contain_text(f"the policy mentions {WORD}")
        expect(page.locator("#significance")).to_contain_text("Not significant at 0.05")
        expect(page.locator("#policy-diff")).to_contain_text("SP2.b A lottery or prize draw")
        assert run.pk in {int(v) for v in re.findall(r"b=(\d+)", page.url)}
        assert errors == []
    finally:
        context.close()
