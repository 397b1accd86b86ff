"""files.atomic: a reader sees the old file or the whole new one, and no temporary is left."""

import errno
import os
import pickle
import stat
from pathlib import Path

import pytest
import torch

from firstorder.files import WriteError, atomic, check_writable, write_atomic


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


def test_a_full_disk_is_one_error_naming_the_file_and_the_old_contents_stay(tmp_path):
    path = tmp_path / "results.json"
    write_atomic(path, '{"findings": []}')
    with pytest.raises(OSError) as err, atomic(path) as fh:
        fh.write("half")
        raise OSError(errno.ENOSPC, "No space left on device")  # what a full disk raises
    assert isinstance(err.value, WriteError) and err.value.errno == errno.ENOSPC
    assert str(err.value) == (
        f"could not write {str(path)!r}: No space left on device "
        "(it keeps its previous contents, if any)."
    )
    assert path.read_text() == '{"findings": []}'
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    again = pickle.loads(pickle.dumps(err.value))  # as from a worker process
    assert str(again) == str(err.value) and again.errno == errno.ENOSPC


def test_a_failing_cleanup_does_not_raise_a_second_error(tmp_path, monkeypatch):
    def unlink(self, missing_ok=False):
        raise PermissionError(errno.EROFS, "Read-only file system")

    path = tmp_path / "report.html"
    with pytest.raises(KeyboardInterrupt) as err:
        with atomic(path) as fh:
            monkeypatch.setattr(type(path), "unlink", unlink)  # the folder became read-only
            fh.write("<p>")
            raise KeyboardInterrupt
    # the first error is the one raised, and nothing else happened while handling it
    assert err.value.__context__ is None


def test_a_folder_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(WriteError, match="could not write .*taken/results.json"):
        write_atomic(tmp_path / "taken" / "results.json", "{}")


@pytest.mark.parametrize(
    "name, folder, words",
    [
        ("a-file", True, "--out must be a folder this process can write, got .*: it is a file."),
        ("a-file/sub", True, "'.*a-file' is a file, not a folder"),
        ("a-file/plot.png", False, "'.*a-file' is a file, not a folder"),
        (".", False, "--out must be a file name this process can write, got .*: it is a folder."),
        ("nul\0byte", True, "embedded null byte"),
        ("x" * 300, True, "File name too long"),
    ],
    ids=["file as folder", "under a file", "plot under a file", "folder as file", "nul", "long"],
)
def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, name, folder, words):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ValueError, match=words):
        check_writable(tmp_path / name, "--out", folder=folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing left behind


def test_a_writable_output_is_accepted_and_the_folders_made_to_check_it_are_removed(tmp_path):
    assert check_writable(tmp_path / "a" / "b", "--out", folder=True) == tmp_path / "a" / "b"
    assert check_writable(tmp_path / "c" / "plot.png", "--plot", folder=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="Linux's /proc refuses new files")
def test_a_folder_no_one_can_write_is_refused(tmp_path):
    # /proc refuses new entries even to root, for whom permission bits do not count
    with pytest.raises(ValueError, match="--out must be a folder this process can write"):
        check_writable("/proc/firstorder-out", "--out", folder=True)
