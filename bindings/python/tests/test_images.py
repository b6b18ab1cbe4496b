import logging

from quicksand._images import package_image_dirs


def test_installed_image_packages_are_found(tmp_path, monkeypatch, caplog):
    # Two installed distributions as pip leaves them: one declares its image
    # folder under quicksand_go.images, the other's entry point is broken.
    (tmp_path / "fake_images.py").write_text(f"def images_dir():\n    return {str(tmp_path / 'imgs')!r}\n")
    for name, target in (("fake_images", "fake_images:images_dir"), ("broken_images", "no_such_module:images_dir")):
        info = tmp_path / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[quicksand_go.images]\n{name} = {target}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="quicksand"):
        dirs = package_image_dirs()
    assert str(tmp_path / "imgs") in dirs
    assert any("broken_images" in r.getMessage() for r in caplog.records), caplog.records
    monkeypatch.undo()
    assert str(tmp_path / "imgs") not in package_image_dirs()
