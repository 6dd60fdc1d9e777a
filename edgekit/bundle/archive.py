"""Open a bundle whether it is a directory, a .tar.gz or a .zip; extraction refuses paths that escape."""

from __future__ import annotations

import contextlib
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from edgekit.errors import BundleIntegrityError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")


def is_archive(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


def extract(path: Path, dest: Path) -> Path:
    """Unpack an archive into ``dest``; returns the bundle root (the one top-level directory, if there is one)."""
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for name in zf.namelist():
                    if name.startswith("/") or ".." in Path(name).parts:
                        raise BundleIntegrityError(f"{path}: member {name!r} would escape the bundle directory")
                zf.extractall(dest)
        else:
            with tarfile.open(path, "r:*") as tf:
                tf.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise BundleIntegrityError(f"{path} is not a readable bundle archive: {err}") from err
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not (dest / "manifest.json").exists():
        return entries[0]
    return dest


@contextlib.contextmanager
def opened(path: Path) -> Iterator[Path]:
    """Yield a directory holding the bundle's files; archives are unpacked into a temporary directory."""
    if not path.exists():
        raise BundleIntegrityError(f"bundle {path} does not exist")
    if path.is_dir():
        yield path
        return
    if not is_archive(path):
        raise BundleIntegrityError(f"{path} is neither a directory nor a {' / '.join(ARCHIVE_SUFFIXES)} archive")
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-bundle-"))
    try:
        yield extract(path, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pack(directory: Path, out: Path) -> Path:
    """Write ``directory`` as ``out`` (.tar.gz or .zip) with one top-level folder named after ``out``."""
    top = out.name.removesuffix(".tar.gz").removesuffix(".tgz").removesuffix(".zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    if out.name.endswith(".zip"):
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for file in sorted(p for p in directory.rglob("*") if p.is_file()):
                rel = file.relative_to(directory).as_posix()
                # .tflite stays uncompressed so Android can memory-map it straight from the APK/zip.
                method = zipfile.ZIP_STORED if rel.endswith(".tflite") else zipfile.ZIP_DEFLATED
                zf.write(file, f"{top}/{rel}", compress_type=method)
    else:
        with tarfile.open(tmp, "w:gz") as tf:
            tf.add(directory, arcname=top)
    tmp.replace(out)
    return out
