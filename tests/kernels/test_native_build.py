"""jdl.kernels.native's build: where it writes, and that a compiler that fails or a folder that
cannot be written is a NativeUnavailable naming the reason (never a half-written library)."""

import pytest

from jdl.kernels import native


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("JDL_NATIVE_CACHE", str(tmp_path / "libs"))
    assert native.cache_dir() == tmp_path / "libs"


def test_a_failing_compiler_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("JDL_NATIVE_CACHE", str(tmp_path))
    with pytest.raises(native.NativeUnavailable, match=r"^building lstm.cc, attention.cc, optim.cc failed \(/bin/false "):
        native._build("/bin/false")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_cache_names_the_variable_to_set(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("JDL_NATIVE_CACHE", str(tmp_path / "file" / "sub"))
    with pytest.raises(native.NativeUnavailable, match=r"set \$JDL_NATIVE_CACHE to a writable folder"):
        native._build("/bin/false")
