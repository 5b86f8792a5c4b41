"""The ledger key's sources: a file, a descriptor, the variable (ledger/key.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nhi_invoke.errors import ConfigError
from nhi_invoke.ledger import key as ledger_key

KEY = "a-ledger-key-of-thirty-two-chars"


def _file(path: Path, text: str = KEY + "\n", mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_key_file_and_the_variable_with_the_same_key_sign_alike(tmp_path: Path) -> None:
    from_file = ledger_key.load({}, str(_file(tmp_path / "k")))
    from_variable = ledger_key.load({"NHI_LEDGER_KEY": KEY})
    assert from_file is not None
    assert from_variable is not None
    assert from_file.key_id == from_variable.key_id  # the file's trailing newline is not key
    assert from_file.source == "file"


def test_the_file_variable_is_read_when_no_flag_is_given(tmp_path: Path) -> None:
    key = ledger_key.load({"NHI_LEDGER_KEY_FILE": str(_file(tmp_path / "k"))})
    assert key is not None
    assert key.secret == KEY.encode()


def test_a_symbolic_link_to_a_private_key_file_is_followed(tmp_path: Path) -> None:
    """Mounted secrets (a Kubernetes volume) are links to the file that holds the key."""
    target = _file(tmp_path / "..data-key")
    link = tmp_path / "key"
    link.symlink_to(target)
    key = ledger_key.load({}, str(link))
    assert key is not None
    assert key.secret == KEY.encode()


def test_a_descriptor_is_read_once_and_closed(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.write(write, KEY.encode())
    os.close(write)
    key = ledger_key.load({}, f"fd:{read}")
    assert key is not None
    assert key.source == "fd"
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(read)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(ConfigError, match="is not a regular file"):
        ledger_key.load({}, str(fifo))


def test_a_key_of_more_than_4096_bytes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="longer than 4096 bytes"):
        ledger_key.load({}, str(_file(tmp_path / "k", "x" * 5000)))


def test_a_group_readable_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"open to others \(mode 0640\)"):
        ledger_key.load({}, str(_file(tmp_path / "k", mode=0o640)))


def test_no_source_and_no_keyring_marker_means_no_key(tmp_path: Path) -> None:
    assert ledger_key.load({"HOME": str(tmp_path)}) is None


@pytest.mark.parametrize("source", ["fd:", "fd:x", "fd:0", "fd:1", "fd:2", " "])
def test_malformed_sources_are_configuration_errors(source: str) -> None:
    with pytest.raises(ConfigError):
        ledger_key.checked_source(source)
