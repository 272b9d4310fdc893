"""API clients with tokens, a JSON caller, the public spam set, and clean Redis state per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import override_settings

from api import clients, redis_client, schedule, training
from safeguard import firstpass
from tests.api.helpers import JsonCaller
from tests.factories import make_policy

SPAM_SET = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "spam-policy" / "golden_dataset.csv"
QUEUES = ("default", "webhooks")


@pytest.fixture(autouse=True)
def _local_webhook_receivers(settings):
    """The tests' webhook receivers listen on 127.0.0.1, which production refuses unless allowed."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with empty API queues, no rate-limit counters and no periodic-job markers."""

    def clean() -> None:
        connection = redis_client.connection()
        for key in connection.scan_iter("api:*"):
            connection.delete(key)
        for name in QUEUES:
            queue = redis_client.queue(name)
            queue.empty()
            for registry in (queue.scheduled_job_registry, queue.failed_job_registry):
                for job_id in registry.get_job_ids():
                    registry.remove(job_id, delete_job=True)
        schedule._last_ensured = 0.0

    clean()
    yield
    clean()


@pytest.fixture
def spam_examples() -> list[firstpass.LabeledText]:
    if not SPAM_SET.exists():
        pytest.skip(f"the public spam data set is missing ({SPAM_SET.resolve()}): first-pass tests need it")
    return firstpass.read_labeled_csv(SPAM_SET)


@pytest.fixture
def spam(db):
    """A published binary spam policy version."""
    return make_policy(name="Spam")


@pytest.fixture
def other_policy(db):
    return make_policy(name="Harassment")


@pytest.fixture
def acme(db, admin_user, spam):
    """An API client whose default policy is Spam; returns (client, token)."""
    return clients.create_client(actor=admin_user, name="Acme", default_policies=[spam.policy],
                                  webhook_url="http://127.0.0.1:9/hook")


@pytest.fixture
def api(acme) -> JsonCaller:
    return JsonCaller(acme[1])


@pytest.fixture
def trained_spam(spam, spam_examples):
    """The spam policy with a first-pass model trained on the public spam set."""
    training.import_labeled_examples(actor=None, actor_name="system:test", policy=spam.policy,
                                     examples=spam_examples, dataset="golden_dataset.csv")
    model = training.retrain_first_pass(policy=spam.policy)
    assert model is not None
    return spam, model


@pytest.fixture(scope="session")
def _static_root_for_servers(tmp_path_factory):
    """The live server loads whitenoise at start, which warns (an error here) when STATIC_ROOT is
    missing; session-scoped because the server is."""
    with override_settings(STATIC_ROOT=tmp_path_factory.mktemp("static")):
        yield


@pytest.fixture
def server(_static_root_for_servers, live_server):
    """pytest-django's live server: a real threaded HTTP server on the test database."""
    return live_server
