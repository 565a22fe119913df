"""A GPU bundle sent in parts: scripts/gpu_parts.sh split / check / join, run as on the machines.

A small fake bundle (an encoder folder of random bytes, wheels, an archive) is split into 1 MiB
parts; the join must rebuild it exactly, once, and refuse a missing, corrupt or foreign part or a
broken tar with one line naming it, leaving the destination as it was and no temporary folder.
The launchers' argument errors are checked here too (they fail before any work).
"""

import hashlib
import io
import random
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
MIB = 1 << 20


def sh(script: str, *args, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["bash", str(SCRIPTS / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The failure of a script: exit status 2 and exactly one line on stderr."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def bundle(tmp_path):
    """A fake bundle folder of about 2.5 MiB: three 1 MiB parts."""
    rng = random.Random(0)
    src = tmp_path / "src"
    (src / "encoder-fake" / "1_Pooling").mkdir(parents=True)
    (src / "encoder-fake" / "model.safetensors").write_bytes(rng.randbytes(2 * MIB + MIB // 2))
    (src / "encoder-fake" / "config.json").write_text('{"model_type": "mpnet"}')
    (src / "encoder-fake" / "1_Pooling" / "config.json").write_text("{}")
    (src / "whl").mkdir()
    (src / "whl" / "dill-0.3.8-py3-none-any.whl").write_bytes(rng.randbytes(5000))
    (src / "payload.tar.xz").write_bytes(rng.randbytes(3000))
    return src


def split(src: Path, parts: Path) -> list[Path]:
    out = sh("gpu_parts.sh", "split", src, parts, 1, check=True)
    assert "in 3 parts of at most 1 MiB" in out.stdout
    return sorted(parts.iterdir())


def siblings(path: Path) -> list[str]:
    """What lies beside ``path``: a temporary folder left there would show up."""
    return sorted(p.name for p in path.parent.iterdir())


def test_split_then_join_rebuilds_the_bundle_once(bundle, tmp_path):
    parts = tmp_path / "gpu.parts"
    folders = split(bundle, parts)
    assert [f.name for f in folders] == ["part-001", "part-002", "part-003"]
    manifests = {(f / "MANIFEST.sha256").read_text() for f in folders}
    assert len(manifests) == 1  # every part carries the same manifest
    manifest = manifests.pop()
    for n, folder in enumerate(folders, 1):
        piece = folder / f"bundle.tar.{n:03d}"
        assert sorted(p.name for p in folder.iterdir()) == ["MANIFEST.sha256", piece.name]
        assert piece.stat().st_size <= MIB
        assert f"{hashlib.sha256(piece.read_bytes()).hexdigest()}  {folder.name}/{piece.name}" in (
            manifest.splitlines()
        )
    assert sh("gpu_parts.sh", "check", parts, check=True).stdout.startswith(
        "gpu_parts: all 3 parts are here and intact"
    )

    dest = tmp_path / "gpu"
    dest.mkdir()
    (dest / "stale.txt").write_text("an older bundle")  # replaced whole, not merged
    out = sh("gpu_parts.sh", "join", parts, dest, check=True)
    assert "joined 3 parts" in out.stdout
    joined = tree(dest)
    joined.pop(".bundle-sha256")
    assert joined == tree(bundle)
    whole = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(parts.glob("*/bundle.tar.*"))))
    assert (dest / ".bundle-sha256").read_text().strip() == whole.hexdigest()
    assert siblings(dest) == ["gpu", "gpu.parts", "src"]

    # joined once: a second join leaves the folder alone (even with the pieces gone by then)
    (dest / "sentinel").write_text("kept")
    for piece in parts.glob("*/bundle.tar.*"):
        piece.unlink()
    out = sh("gpu_parts.sh", "join", parts, dest, check=True)
    assert "already joined" in out.stdout and (dest / "sentinel").exists()


def test_a_missing_part_is_named_and_nothing_is_joined(bundle, tmp_path):
    parts = tmp_path / "gpu.parts"
    split(bundle, parts)
    shutil.rmtree(parts / "part-002")  # the machine was given back before part 3 came
    out = sh("gpu_parts.sh", "check", parts, check=True)
    assert "2 of 3 parts here and intact; still to send: part-002" in out.stdout
    dest = tmp_path / "gpu"
    error = one_line_error(sh("gpu_parts.sh", "join", parts, dest))
    assert error.startswith("gpu_parts: missing: part-002 (of 3 parts in ")
    assert not dest.exists() and siblings(dest) == ["gpu.parts", "src"]

    shutil.rmtree(parts)
    parts.mkdir()
    assert "no parts in" in one_line_error(sh("gpu_parts.sh", "join", parts, dest))


def test_a_corrupt_part_is_named_and_the_old_bundle_stays(bundle, tmp_path):
    parts = tmp_path / "gpu.parts"
    split(bundle, parts)
    piece = parts / "part-003" / "bundle.tar.003"
    data = bytearray(piece.read_bytes())
    data[100] ^= 1  # one flipped bit in transit
    piece.write_bytes(bytes(data))
    shutil.rmtree(parts / "part-001")
    dest = tmp_path / "gpu"
    dest.mkdir()
    (dest / "old.txt").write_text("the bundle in use")
    for command in ("check", "join"):
        args = [parts] if command == "check" else [parts, dest]
        error = one_line_error(sh("gpu_parts.sh", command, *args))
        assert error.startswith("gpu_parts: corrupt: part-003 (sha256 ")
        assert "; missing: part-001 (of 3 parts" in error
    assert tree(dest) == {"old.txt": hashlib.sha256(b"the bundle in use").hexdigest()}
    assert siblings(dest) == ["gpu", "gpu.parts", "src"]


def test_parts_of_two_bundles_do_not_mix(bundle, tmp_path):
    parts, other = tmp_path / "gpu.parts", tmp_path / "other.parts"
    split(bundle, parts)
    (bundle / "payload.tar.xz").write_bytes(b"another study's data")
    split(bundle, other)
    shutil.rmtree(parts / "part-002")
    shutil.copytree(other / "part-002", parts / "part-002")  # left from an earlier bundle
    error = one_line_error(sh("gpu_parts.sh", "join", parts, tmp_path / "gpu"))
    assert "are parts of different bundles" in error and "part-002" in error
    assert not (tmp_path / "gpu").exists()


def test_a_broken_tar_leaves_nothing_half_joined(tmp_path):
    """Pieces whose sums match a manifest but that form a cut-off tar: the unpack starts and
    fails; its temporary folder goes, and the destination is as it was."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in ("encoder-x/a.bin", "encoder-x/b.bin"):
            info = tarfile.TarInfo(name)
            payload = random.Random(name).randbytes(300_000)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    data = buffer.getvalue()[:450_000]  # the second file is cut short
    parts = tmp_path / "gpu.parts"
    lines = []
    for n, start in enumerate(range(0, len(data), 200_000), 1):
        folder = parts / f"part-{n:03d}"
        folder.mkdir(parents=True)
        piece = data[start : start + 200_000]
        (folder / f"bundle.tar.{n:03d}").write_bytes(piece)
        lines.append(f"{hashlib.sha256(piece).hexdigest()}  {folder.name}/bundle.tar.{n:03d}")
    lines.append(f"{hashlib.sha256(data).hexdigest()}  bundle.tar")
    for folder in parts.iterdir():
        (folder / "MANIFEST.sha256").write_text("\n".join(lines) + "\n")
    dest = tmp_path / "gpu"
    dest.mkdir()
    (dest / "old.txt").write_text("the bundle in use")
    error = one_line_error(sh("gpu_parts.sh", "join", parts, dest))
    assert error.startswith("gpu_parts: the joined parts are not a valid tar")
    assert sorted(p.name for p in dest.iterdir()) == ["old.txt"]
    assert siblings(dest) == ["gpu", "gpu.parts"]


def test_the_launchers_refuse_bad_arguments_in_one_line(tmp_path):
    for script, args, words in [
        ("gpu_parts.sh", ["split", tmp_path, tmp_path / "p", "0"], "whole number of MiB"),
        ("gpu_parts.sh", ["split", tmp_path / "none", tmp_path / "p", "1"], "no folder"),
        ("gpu_parts.sh", ["unpack"], "usage: gpu_parts.sh split"),
        ("gpu_bundle.sh", ["--model"], "--model needs a value"),
        ("gpu_bundle.sh", ["--part-mib", "60M"], "whole number of MiB"),
        ("gpu_bundle.sh", ["--modle", "mpnet"], "unknown option --modle"),
        ("gpu_bundle.sh", [tmp_path / "none.yaml"], "no study file"),
        ("gpu_study.sh", ["--precision", "fp8", tmp_path / "out"], "must be auto, fp32, bf16"),
        ("gpu_study.sh", [], "usage: gpu_study.sh"),
        ("gpu_study.sh", [tmp_path / "out", "2", tmp_path / "none.yaml"], "no study file"),
        ("gpu_study.sh", ["--time-limit", "8m", tmp_path / "out"], "whole seconds"),
        ("gpu_study.sh", ["--pack", tmp_path / "runs.zip", tmp_path / "out"], "a .tgz archive"),
        ("gpu_study.sh", ["--pack"], "--pack needs a value"),
        ("gpu_study.sh", [tmp_path / "out", "0"], "WORKERS must be a whole number"),
        ("gpu_study.sh", ["--checkpoint-minutes", "0", tmp_path / "out"], "positive number"),
        ("gpu_study.sh", ["--checkpoint-minutes", "2m", tmp_path / "out"], "positive number"),
    ]:
        assert words in one_line_error(sh(script, *args)), (script, args)
    assert not (tmp_path / "p").exists() and not (tmp_path / "out").exists()


def test_part_folders_are_ignored_by_git():
    root = SCRIPTS.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    names = [".gpu/encoder-mpnet/x", ".gpu.parts/part-001/bundle.tar.001", ".gpu.tmp/x"]
    proc = subprocess.run(
        ["git", "-C", str(root), "check-ignore", *names], capture_output=True, text=True
    )
    assert proc.stdout.split() == names
