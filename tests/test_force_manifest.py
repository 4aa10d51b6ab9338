"""`--force` deletes only the files medsyn wrote, as it wrote them: the manifest records each file's size
and SHA-256, so a hand-made manifest or a file changed since cannot make medsyn delete a user's data; a
symlinked `--out` is followed, never replaced (issue 39, cases 1-3, 10 and the last of 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_outputs_safety import dcgan_run, listing, one_line_error, write_png  # noqa: F401
from test_train_tiny import random_images, tiny_models, train  # noqa: F401

FORGED = {"written_by": "medsyn", "version": "0.1.0", "command": "sample", "created": "2026-01-01T00:00:00+0000",
          "files": ["thesis.docx"]}


def sample(cli, run, out, *extra):
    return cli("sample", run, "--n", "2", "--out", out, "--device", "cpu", *extra)


def test_a_hand_made_manifest_does_not_make_force_delete_a_users_file(cli, dcgan_run, tmp_path):  # case 1
    u = tmp_path / "u"
    u.mkdir()
    (u / "thesis.docx").write_text("x")
    (u / ".medsyn-output.json").write_text(json.dumps(FORGED) + "\n")
    one_line_error(sample(cli, dcgan_run, u, "--force"), 2, "thesis.docx", "older medsyn")
    assert (u / "thesis.docx").read_text() == "x"
    # the same manifest with a record that is not this file's: still refused
    forged = {**FORGED, "command": "data export", "files": {"thesis.docx": {"size": 2, "sha256": "0" * 64}}}
    (u / ".medsyn-output.json").write_text(json.dumps(forged))
    one_line_error(cli("data", "export", tmp_path, "--res", "16", "--out", u, "--force"), 2, "thesis.docx",
                   "changed after medsyn wrote it")
    assert (u / "thesis.docx").read_text() == "x"


def test_a_file_changed_after_medsyn_wrote_it_is_not_deleted_by_force(cli, dcgan_run, tmp_path):  # case 2
    s = tmp_path / "s"
    assert sample(cli, dcgan_run, s).returncode == 0
    records = json.loads((s / ".medsyn-output.json").read_text())["files"]
    assert set(records) == {"sample_00000.png", "sample_00001.png"}
    assert records["sample_00000.png"]["size"] == (s / "sample_00000.png").stat().st_size
    (s / "sample_00000.png").write_text("mine")
    one_line_error(sample(cli, dcgan_run, s, "--force"), 2, "sample_00000.png changed after medsyn wrote it")
    assert (s / "sample_00000.png").read_text() == "mine"


def test_files_added_to_a_folder_are_overwritten_only_as_written(cli, tmp_path):
    img = write_png(tmp_path / "a.png")
    out = tmp_path / "e"
    assert cli("edges", img, "--out", out).returncode == 0
    assert cli("edges", img, "--out", out, "--force").returncode == 0  # unchanged: medsyn's to replace
    (out / "a_sobel.png").write_bytes(b"edited by hand")
    one_line_error(cli("edges", img, "--out", out, "--force"), 2, "a_sobel.png", "changed after medsyn wrote it")
    assert (out / "a_sobel.png").read_bytes() == b"edited by hand"


def test_a_symlinked_out_is_followed_never_replaced(cli, dcgan_run, tmp_path):  # case 3, case 11 (last)
    s2 = tmp_path / "s2"
    assert sample(cli, dcgan_run, s2).returncode == 0
    link = tmp_path / "l"
    link.symlink_to(s2)
    proc = sample(cli, dcgan_run, link, "--force")
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and link.resolve() == s2.resolve()
    assert listing(s2) == [".medsyn-output.json", "sample_00000.png", "sample_00001.png"]
    assert listing(tmp_path) == ["l", "s2", *(f"s2/{n}" for n in listing(s2))]  # no lock or temporary left
    empty, link2 = tmp_path / "empty", tmp_path / "l2"
    empty.mkdir()
    link2.symlink_to(empty)
    proc = sample(cli, dcgan_run, link2, "--force")  # was "not a folder", after sampling
    assert proc.returncode == 0, proc.stderr
    assert link2.is_symlink() and (empty / "sample_00001.png").is_file()


def test_manifest_accounts_for_every_entry(tmp_path):
    from medsyn_cli.manifest import file_record, first_unaccounted

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(b"a")
    (tmp_path / "b.png").write_bytes(b"b")
    files = {"sub/a.png": file_record(tmp_path / "sub" / "a.png"), "b.png": file_record(tmp_path / "b.png")}
    assert first_unaccounted(tmp_path, files) is None
    (tmp_path / "b.png").write_bytes(b"c")  # same size, other content
    assert first_unaccounted(tmp_path, files) == ("b.png", "changed after medsyn wrote it")
    (tmp_path / "b.png").unlink()
    (tmp_path / "b.png").symlink_to(tmp_path / "sub" / "a.png")
    assert first_unaccounted(tmp_path, files)[0] == "b.png"
    (tmp_path / "b.png").unlink()
    assert first_unaccounted(tmp_path, files) is None  # a recorded file the user removed loses nothing
    (tmp_path / "empty").mkdir()
    assert first_unaccounted(tmp_path, files) == ("empty/", "was not written by medsyn")


def test_train_force_through_a_symlinked_out_keeps_the_link(tiny_models, tmp_path):  # case 10
    run = tmp_path / "run"
    train(run, random_images(8), steps=1, batch_size=4)
    link = tmp_path / "link"
    link.symlink_to(run)
    result, _ = train(link, random_images(8), steps=2, batch_size=4, force=True)
    assert result.step == 2 and result.exit_code == 0
    assert link.is_symlink() and (run / "checkpoints" / "latest.pt").is_file()
    assert json.loads((run / "config.json").read_text())["training"]["steps"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "run"]  # no lock left beside either


@pytest.mark.parametrize("name", ["my_model.safetensors", "weights-v2.safetensors"])
def test_train_force_keeps_a_users_model_copied_into_a_run(tiny_models, tmp_path, name):
    from medsyn_cli.errors import InputError

    run = tmp_path / "run"
    train(run, random_images(8), steps=1, batch_size=4)
    (run / name).write_bytes(b"mine")
    with pytest.raises(InputError, match=f"{name} is not part of a medsyn run"):
        train(run, random_images(8), steps=1, batch_size=4, force=True)
    assert (run / name).read_bytes() == b"mine"
