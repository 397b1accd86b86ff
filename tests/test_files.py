"""files.atomic: a reader sees the old file or the whole new one, and no temporary is left."""

import os
import stat

import pytest
import torch

from firstorder.files import atomic, write_atomic


def test_the_new_text_replaces_the_old_and_no_temporary_is_left(tmp_path):
    path = tmp_path / "deep" / "results.json"  # the folders are made
    write_atomic(path, "old")
    assert write_atomic(path, "new") == path
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_an_error_while_writing_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"k": 1}, path)
    with pytest.raises(KeyboardInterrupt), atomic(path, "wb") as fh:
        fh.write(b"half of a checkpoint")
        raise KeyboardInterrupt  # Ctrl-C in the middle of a write
    assert torch.load(path) == {"k": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_bytes_written_through_the_handle_arrive_whole(tmp_path):
    path = tmp_path / "state.pt"
    with atomic(path, "wb") as fh:
        torch.save({"theta": torch.arange(5.0)}, fh)
    torch.testing.assert_close(torch.load(path)["theta"], torch.arange(5.0))


def test_a_mode_other_than_text_or_bytes_writing_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb', got 'a'"):
        with atomic(tmp_path / "x.txt", "a"):
            pass


def test_the_file_gets_the_permissions_of_the_umask_as_a_plain_open_would(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "report.html", "<p>")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == 0o644
