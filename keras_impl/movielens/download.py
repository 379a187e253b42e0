"""``kcourse data download``: fetch a MovieLens archive from GroupLens, check it, unpack it atomically."""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from keras_impl import files
from keras_impl.movielens.readers import LAYOUTS

# ----------------------------------------------------------------------------------------------
# kcourse data download
# ----------------------------------------------------------------------------------------------

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"
# name -> layout of its files. Each archive holds one folder named like it (ml-100k.zip: ml-100k/).
DATASETS = {"ml-latest-small": "csv", "ml-20m": "csv", "ml-25m": "csv", "ml-32m": "csv", "ml-100k": "ml-100k",
            "ml-1m": "ml-1m"}
# MD5 of the archives that never change, as published by GroupLens and quoted by many projects
# (the ml-latest archives are rebuilt, so only the server's NAME.zip.md5 can check them).
KNOWN_MD5 = {"ml-100k": "0e33842e24a9c977be4e0107933c0723", "ml-1m": "c4d9eecfca2ab87c1945afe126590906"}


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected_md5(name: str, url: str, md5: str | None, timeout: float) -> str:
    """``--md5``, else the known checksum, else the server's ``NAME.zip.md5`` file."""
    if md5:
        if len(md5) != 32 or any(c not in "0123456789abcdefABCDEF" for c in md5):
            raise ValueError(f"Received an invalid value for argument `md5`: expected 32 hex digits, got {md5!r}")
        return md5.lower()
    if name in KNOWN_MD5:
        return KNOWN_MD5[name]
    try:
        with urllib.request.urlopen(url + ".md5", timeout=timeout) as response:
            return response.read().decode("ascii", "replace").split()[0].lower()
    except urllib.error.HTTPError as err:
        raise ValueError(f"{url}.md5: no checksum published (HTTP {err.code}); pass --md5 HEX with the archive's "
                         f"MD5 from a source you trust") from None
    except IndexError:
        raise ValueError(f"{url}.md5: the checksum file is empty; pass --md5 HEX") from None


def _check_target(target: Path) -> None:
    """Refuse to replace a folder at ``target`` that is not a complete download of ours."""
    if target.exists() and not files.is_complete(target) and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{target} exists and is not a complete download by kcourse; nothing was changed. Move it "
                         f"away, or pass another --to")


def download(name: str, to: str | os.PathLike, base_url: str = GROUPLENS_URL, md5: str | None = None,
             timeout: float = 60.0) -> Path:
    """Download ``{base_url}/{name}.zip``, check its MD5 and unpack it to ``{to}/{name}``.

    The checksum is ``md5`` when given, else the known one of ml-100k and ml-1m
    (:data:`KNOWN_MD5`), else the ``{name}.zip.md5`` file GroupLens publishes next to the archive
    (it does for ml-latest-small, ml-20m, ml-25m and ml-32m; where a server has none, pass ``md5``).
    The archive is fetched to a temporary file and unpacked into a temporary sibling folder that is
    moved into place only when complete (with a ``COMPLETE`` marker), so an interrupted download
    never looks like a dataset. An existing ``{to}/{name}`` that is not a complete download is left
    alone (an error), never replaced.

    Returns:
        The dataset folder (``{to}/{name}``, holding the files of its layout: ratings.csv and
        movies.csv, u.data and u.item, or ratings.dat and movies.dat).

    Raises:
        ValueError: unknown name, bad or unavailable checksum, checksum mismatch, a foreign folder
            at the target, or an archive without its layout's files.
        OSError: network errors (``urllib.error.URLError``).
    """
    if name not in DATASETS:
        raise ValueError(f"Received an invalid value for argument `name`: expected one of {', '.join(DATASETS)}, got {name!r}")
    target = Path(to) / name
    if files.is_complete(target):
        return target
    _check_target(target)
    url = f"{base_url.rstrip('/')}/{name}.zip"
    md5 = _expected_md5(name, url, md5, timeout)  # before anything is created: a bad --md5 leaves nothing
    made = [p for p in (target.parent, *target.parent.parents) if not os.path.lexists(p)]  # deepest first
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _fetch(name, target, url, md5, timeout)
    except BaseException:  # no network, a checksum mismatch, Ctrl-C: the folders made for it go again
        for folder in made:
            try:
                folder.rmdir()  # only if empty
            except OSError:
                break
        raise


def _fetch(name: str, target: Path, url: str, md5: str, timeout: float) -> Path:
    """Download ``url`` beside ``target``, check its MD5, unpack it into ``target`` atomically."""
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
        if got != md5:
            raise ValueError(f"{url}: checksum mismatch (md5 {got}, expected {md5}); the download is "
                             f"corrupt or incomplete and was deleted")
        with files.atomic_directory(target) as tmp_dir:
            _unpack(Path(tmp_zip), tmp_dir, name, url)
            files.atomic_write_json(tmp_dir / "DOWNLOAD.json", {"url": url, "md5": got})
    finally:
        if os.path.exists(tmp_zip):
            os.unlink(tmp_zip)
    return target


def _unpack(archive_path: Path, tmp_dir: Path, name: str, url: str) -> None:
    """Extract the archive into ``tmp_dir``, lift its one inner folder, check the layout's files."""
    with zipfile.ZipFile(archive_path) as archive:
        for member in archive.namelist():  # no absolute paths or '..' (zip slip)
            if member.startswith("/") or ".." in Path(member).parts:
                raise ValueError(f"{url}: unsafe path {member!r} in the archive")
        archive.extractall(tmp_dir)
    inner = tmp_dir / name  # GroupLens zips hold one folder named like the archive
    if inner.is_dir():
        for item in inner.iterdir():
            shutil.move(str(item), tmp_dir / item.name)
        inner.rmdir()
    for needed in LAYOUTS[DATASETS[name]]:
        if not (tmp_dir / needed).is_file():
            raise ValueError(f"{url}: the archive has no {needed}")
