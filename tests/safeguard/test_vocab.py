from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from safeguard import vocab
from safeguard.vocab import VOCAB_FILE_NAME, VOCAB_SHA256, VocabError, ensure_vocab, install_vocab


@pytest.fixture
def fresh_vocab_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let a test call ensure_vocab afresh, and put the process-wide state back afterwards."""
    saved = vocab._vocab_folder
    vocab.reset_vocab_state()
    monkeypatch.delenv(vocab.ENV_ENCODINGS_BASE, raising=False)
    monkeypatch.delenv(vocab.ENV_CACHE_DIR, raising=False)
    yield
    vocab._vocab_folder = saved


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_it_unpacks_the_bundled_vocabulary_with_the_expected_hash(tmp_path: Path) -> None:
    target = install_vocab(tmp_path / "cache")

    assert target == tmp_path / "cache" / VOCAB_FILE_NAME
    assert _sha256(target) == VOCAB_SHA256
    assert sorted(p.name for p in target.parent.iterdir()) == [VOCAB_FILE_NAME]


def test_it_replaces_a_corrupted_cached_file(tmp_path: Path) -> None:
    (tmp_path / VOCAB_FILE_NAME).write_bytes(b"not a vocabulary\n")

    target = install_vocab(tmp_path)

    assert _sha256(target) == VOCAB_SHA256


def test_it_rejects_a_source_whose_hash_does_not_match_and_leaves_no_file(tmp_path: Path) -> None:
    good = gzip.decompress(vocab.bundled_vocab().read_bytes())
    corrupted = tmp_path / "o200k_base.tiktoken.gz"
    corrupted.write_bytes(gzip.compress(good[:-10] + b"corrupted\n"))
    folder = tmp_path / "cache"

    with pytest.raises(VocabError, match="sha256"):
        install_vocab(folder, source=corrupted)

    assert not folder.exists() or list(folder.iterdir()) == []


def test_it_rejects_a_source_that_is_not_gzip(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gz"
    broken.write_bytes(b"plain bytes")

    with pytest.raises(VocabError, match="could not unpack"):
        install_vocab(tmp_path / "cache", source=broken)


def test_it_unpacks_into_safeguard_cache_dir_and_points_harmony_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_vocab_state: None
) -> None:
    monkeypatch.setenv(vocab.ENV_CACHE_DIR, str(tmp_path / "cache"))

    folder = ensure_vocab()

    assert folder == str(tmp_path / "cache")
    assert os.environ[vocab.ENV_ENCODINGS_BASE] == folder
    assert _sha256(Path(folder) / VOCAB_FILE_NAME) == VOCAB_SHA256


def test_it_respects_a_tiktoken_encodings_base_that_is_already_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_vocab_state: None
) -> None:
    install_vocab(tmp_path / "operator")
    monkeypatch.setenv(vocab.ENV_ENCODINGS_BASE, str(tmp_path / "operator"))
    monkeypatch.setenv(vocab.ENV_CACHE_DIR, str(tmp_path / "unused"))

    assert ensure_vocab() == str(tmp_path / "operator")
    assert os.environ[vocab.ENV_ENCODINGS_BASE] == str(tmp_path / "operator")
    assert not (tmp_path / "unused").exists()


def test_it_refuses_a_preset_folder_without_the_vocabulary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_vocab_state: None
) -> None:
    monkeypatch.setenv(vocab.ENV_ENCODINGS_BASE, str(tmp_path / "empty"))

    with pytest.raises(VocabError, match=VOCAB_FILE_NAME):
        ensure_vocab()


def test_it_does_the_work_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_vocab_state: None
) -> None:
    monkeypatch.setenv(vocab.ENV_CACHE_DIR, str(tmp_path / "first"))
    first = ensure_vocab()
    monkeypatch.setenv(vocab.ENV_CACHE_DIR, str(tmp_path / "second"))

    assert ensure_vocab() == first
    assert not (tmp_path / "second").exists()


def test_it_loads_harmony_offline_in_a_fresh_process(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != vocab.ENV_ENCODINGS_BASE}
    env[vocab.ENV_CACHE_DIR] = str(tmp_path / "cache")
    # Any attempt to download would go through these and fail fast.
    env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    script = "import safeguard, os; print(safeguard.count_tokens('hello world'), os.environ['TIKTOKEN_ENCODINGS_BASE'])"

    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", str(tmp_path / "cache")]
