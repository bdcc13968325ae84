"""A folder written as a whole appears under its name only when complete."""

import pytest

from tracefactory.io import atomic_folder


def test_the_folder_replaces_the_old_one_only_when_the_block_ends(tmp_path):
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with atomic_folder(final) as staging:
        assert staging == tmp_path / "model.incomplete"
        (staging / "new.txt").write_text("new")
        assert (final / "old.txt").is_file()  # readers still see the whole old folder
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert not staging.exists()


def test_a_failed_build_leaves_the_old_folder_and_the_next_build_starts_clean(tmp_path):
    final = tmp_path / "dataset"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(final) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("crash")
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    with atomic_folder(final) as staging:
        assert list(staging.iterdir()) == []  # the crashed build's leftovers are gone
