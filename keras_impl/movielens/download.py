"""``kcourse data download``: fetch a MovieLens archive from GroupLens, check it, unpack it atomically."""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from keras_impl import files
from keras_impl.movielens.readers import MOVIES_FILE, RATINGS_FILE

# ----------------------------------------------------------------------------------------------
# kcourse data download
# ----------------------------------------------------------------------------------------------

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"
DATASETS = ("ml-latest-small", "ml-20m", "ml-25m", "ml-32m")


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(name: str, to: str | os.PathLike, base_url: str = GROUPLENS_URL, md5: str | None = None,
             timeout: float = 60.0) -> Path:
    """Download ``{base_url}/{name}.zip``, check its MD5 and unpack it to ``{to}/{name}``.

    The checksum is ``md5`` when given, else the ``{name}.zip.md5`` file GroupLens publishes
    next to each archive. The archive is fetched to a temporary file and unpacked into a temporary
    sibling folder that is moved into place only when complete (with a ``COMPLETE`` marker), so an
    interrupted download never looks like a dataset.

    Returns:
        The dataset folder (``{to}/{name}``, holding ratings.csv and movies.csv).

    Raises:
        ValueError: unknown name, checksum mismatch, or an archive without ratings/movies files.
        OSError: network errors (``urllib.error.URLError``).
    """
    if name not in DATASETS:
        raise ValueError(f"Received an invalid value for argument `name`: expected one of {', '.join(DATASETS)}, got {name!r}")
    target = Path(to) / name
    if files.is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    url = f"{base_url.rstrip('/')}/{name}.zip"
    if md5 is None:
        with urllib.request.urlopen(url + ".md5", timeout=timeout) as response:
            md5 = response.read().decode().split()[0]
    fd, tmp_zip = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".zip.part")
    try:
        with os.fdopen(fd, "wb") as handle, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = tqdm(total=total, desc=f"{name}.zip", disable=not sys.stderr.isatty())
            for block in iter(lambda: response.read(1 << 20), b""):
                handle.write(block)
                bar.update(len(block))
            bar.close()
        got = _md5(Path(tmp_zip))
        if got != md5.lower():
            raise ValueError(f"{url}: checksum mismatch (md5 {got}, expected {md5.lower()}); the download is "
                             f"corrupt or incomplete and was deleted")
        with files.atomic_directory(target) as tmp_dir, zipfile.ZipFile(tmp_zip) as archive:
            members = archive.namelist()
            for member in members:  # no absolute paths or '..' (zip slip)
                if member.startswith("/") or ".." in Path(member).parts:
                    raise ValueError(f"{url}: unsafe path {member!r} in the archive")
            archive.extractall(tmp_dir)
            inner = tmp_dir / name  # GroupLens zips hold one folder named like the archive
            if inner.is_dir():
                for item in inner.iterdir():
                    shutil.move(str(item), tmp_dir / item.name)
                inner.rmdir()
            for needed in (RATINGS_FILE, MOVIES_FILE):
                if not (tmp_dir / needed).is_file():
                    raise ValueError(f"{url}: the archive has no {needed}")
            files.atomic_write_json(tmp_dir / "DOWNLOAD.json", {"url": url, "md5": got})
    finally:
        if os.path.exists(tmp_zip):
            os.unlink(tmp_zip)
    return target

