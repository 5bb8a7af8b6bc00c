"""Output sets published together, crash recovery, and the output-folder lock (:mod:`diffmorph.io.outputs`)."""

from __future__ import annotations

import errno
import os

import pytest

from conftest import part_files
from diffmorph.errors import OutputError
from diffmorph.io import outputs
from diffmorph.io.outputs import FolderLock, OutputSet, recover, sweep


def make_set(root, contents: dict, name: str = "morph"):
    """Write a published set by hand: files (str content) and folders (dict of name -> content),
    recorded in the set's manifest as a publish would."""
    for name_, value in contents.items():
        path = root / name_
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, dict):
            path.mkdir()
            for inner, text in value.items():
                (path / inner).write_text(text)
        else:
            path.write_text(value)
    outputs.write_manifest(root, name, [root / name_ for name_ in contents])


def snapshot(root) -> dict:
    """Every file below ``root`` and its text."""
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".outputs.json")
    }


def stage_new(out: OutputSet, root):
    out.stage(root / "morph" / "morph.mp4").write_text("new video")
    out.stage(root / "preds.npy").write_text("new preds")
    frames = out.stage_folder(root / "morph" / "frames")
    (frames / "frame_00000.png").write_text("new 0")


OLD = {
    "morph/morph.mp4": "old video",
    "preds.npy": "old preds",
    "morph/frames": {"frame_00000.png": "old 0", "frame_00001.png": "old 1"},
}
NEW = {"morph/morph.mp4": "new video", "preds.npy": "new preds", "morph/frames/frame_00000.png": "new 0"}


def test_publish_replaces_the_set_and_the_frames_folder_as_a_whole(tmp_path):
    make_set(tmp_path, OLD)
    with OutputSet(tmp_path, "morph") as out:
        stage_new(out, tmp_path)
        assert snapshot(tmp_path)["morph/morph.mp4"] == "old video"  # nothing visible before publishing
        out.publish()
    assert snapshot(tmp_path) == NEW  # frame_00001 of the old set is gone
    assert part_files(tmp_path) == []


def test_staged_names_keep_the_suffix_and_hide(tmp_path):
    with OutputSet(tmp_path) as out:
        staged = out.stage(tmp_path / "morph.gif")
        assert staged.parent == tmp_path and staged.name.startswith(".morph.gif.part-") and staged.suffix == ".gif"


def test_leaving_without_publishing_discards_everything(tmp_path):
    make_set(tmp_path, OLD)
    before = snapshot(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with OutputSet(tmp_path, "morph") as out:
            stage_new(out, tmp_path)
            raise KeyboardInterrupt
    assert snapshot(tmp_path) == before
    assert part_files(tmp_path) == []


def test_a_failed_move_rolls_the_previous_set_back(tmp_path, monkeypatch):
    make_set(tmp_path, OLD)
    before = snapshot(tmp_path)
    real_move = outputs._move
    moves, fired = [], []

    def failing_move(source, destination):
        moves.append(destination)
        if len(moves) == 4:  # the second output's new file: the first output was already replaced
            fired.append(destination)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_move(source, destination)

    monkeypatch.setattr(outputs, "_move", failing_move)
    with OutputSet(tmp_path, "morph") as out:
        stage_new(out, tmp_path)
        with pytest.raises(OutputError, match="No space left on device"):
            out.publish()
    assert fired == [tmp_path / "preds.npy"]
    assert snapshot(tmp_path) == before
    assert part_files(tmp_path) == []


def test_recover_rolls_back_a_publish_cut_off_by_a_kill(tmp_path):
    """A process killed between two moves leaves its journal: the next run restores the old set."""
    make_set(tmp_path, OLD)
    before = snapshot(tmp_path)
    out = OutputSet(tmp_path, "morph")
    stage_new(out, tmp_path)
    moves = [(final, staged, final.with_name(f".{final.name}.old-dead")) for final, staged in out._staged.items()]
    out._write_journal(moves)  # what publish() does first; then the kill lands after three moves:
    (final, staged, backup), (final2, _, backup2) = moves[0], moves[1]
    os.replace(final, backup)
    os.replace(staged, final)
    os.replace(final2, backup2)
    assert snapshot(tmp_path) != before  # half published: the new video, no preds.npy
    assert recover(tmp_path, "morph") is True
    assert snapshot(tmp_path) == before
    assert part_files(tmp_path) == []
    assert recover(tmp_path, "morph") is False


def test_recover_leaves_other_sets_alone(tmp_path):
    other = tmp_path / ".sequence.mp4.publish.json"
    other.write_text("[]")
    assert recover(tmp_path, "morph") is False
    assert other.exists()


def test_sweep_removes_only_the_leftovers_of_the_named_outputs(tmp_path):
    (tmp_path / ".morph.mp4.part-1234.mp4").write_text("x")
    (tmp_path / ".morph.gif.part-99").mkdir()
    (tmp_path / ".other.mp4.part-5.mp4").write_text("someone else's")
    (tmp_path / "morph.mp4").write_text("keep")
    sweep([tmp_path / "morph.mp4", tmp_path / "morph.gif", tmp_path / "missing" / "x.png"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.mp4.part-5.mp4", "morph.mp4"]


def test_lock_refuses_a_second_writer_and_is_released(tmp_path):
    with FolderLock(tmp_path):
        with pytest.raises(OutputError, match=f"another diffmorph run is writing to {tmp_path}"):
            with FolderLock(tmp_path):
                pass
        with FolderLock(tmp_path, ".other.lock"):  # another lock name is another lock
            pass
    with FolderLock(tmp_path):  # released
        pass


def test_lock_that_cannot_be_taken_is_one_line(tmp_path, monkeypatch):
    import filelock

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(filelock.FileLock, "acquire", read_only)
    with pytest.raises(OutputError, match=f"cannot lock {tmp_path}: Read-only file system"):
        with FolderLock(tmp_path):
            pass


def test_retired_outputs_go_when_the_set_is_published(tmp_path):
    make_set(tmp_path, {**OLD, "morph/morph.gif": "old gif"})
    with OutputSet(tmp_path, "morph") as out:
        out.stage(tmp_path / "morph" / "morph.mp4").write_text("new video")
        out.retire(tmp_path / "morph" / "morph.gif")
        out.retire(tmp_path / "morph" / "frames")
        out.retire(tmp_path / "morph" / "never-existed.png")
        out.retire(tmp_path / "morph" / "morph.mp4")  # staged: not retired
        assert (tmp_path / "morph" / "morph.gif").exists()  # nothing goes before publishing
        out.publish()
    assert snapshot(tmp_path) == {"morph/morph.mp4": "new video", "preds.npy": "old preds"}
    assert part_files(tmp_path) == []


def test_retired_outputs_come_back_when_publishing_fails(tmp_path, monkeypatch):
    make_set(tmp_path, {**OLD, "morph/morph.gif": "old gif"})
    before = snapshot(tmp_path)
    real_move, calls = outputs._move, []

    def failing_move(source, destination):
        calls.append(destination)
        if len(calls) == 3:  # after the video was replaced and the GIF moved aside
            raise OSError(errno.EIO, "Input/output error")
        real_move(source, destination)

    monkeypatch.setattr(outputs, "_move", failing_move)
    with OutputSet(tmp_path, "morph") as out:
        out.stage(tmp_path / "morph" / "morph.mp4").write_text("new video")
        out.retire(tmp_path / "morph" / "morph.gif")
        out.retire(tmp_path / "morph" / "frames")
        with pytest.raises(OutputError, match="Input/output error"):
            out.publish()
    assert snapshot(tmp_path) == before
    assert part_files(tmp_path) == []


def test_recover_never_follows_a_journal_outside_its_folder(tmp_path):
    """A journal is a file in the output folder: one edited to name files elsewhere moves and deletes nothing there."""
    import json

    root, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    victim = elsewhere / "notes.txt"
    victim.write_text("mine")
    other = elsewhere / "other.txt"
    other.write_text("also mine")
    inside = root / "morph.mp4"
    inside.write_text("new video")
    entries = [
        {"final": str(victim), "staged": str(elsewhere / ".notes.txt.part-1"), "backup": str(other)},
        {"final": str(root / ".." / "elsewhere" / "other.txt"), "staged": None, "backup": str(victim)},
        {"final": str(inside), "staged": str(other), "backup": str(root / ".morph.mp4.old-1")},
        {"final": str(inside), "staged": str(root / ".morph.mp4.part-1"), "backup": str(victim)},
    ]
    (root / ".morph.publish.json").write_text(json.dumps(entries))
    recover(root, "morph")
    assert victim.read_text() == "mine" and other.read_text() == "also mine"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["notes.txt", "other.txt"]
    assert not (root / ".morph.publish.json").exists()


def test_recover_follows_an_output_placed_outside_when_the_run_names_it(tmp_path):
    """A frames folder chosen outside the output folder is rolled back when the run passes it as ``also``."""
    import json

    root, frames = tmp_path / "out", tmp_path / "frames"
    root.mkdir()
    frames.mkdir()
    (frames / "frame_00000.png").write_text("new")
    backup = tmp_path / ".frames.old-1"
    backup.mkdir()
    (backup / "frame_00000.png").write_text("old")
    entry = {"final": str(frames), "staged": str(tmp_path / ".frames.part-1"), "backup": str(backup)}
    (root / ".morph.publish.json").write_text(json.dumps([entry]))
    assert recover(root, "morph", also=[frames]) is True
    assert (frames / "frame_00000.png").read_text() == "old" and not backup.exists()
