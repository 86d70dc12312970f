"""Download Sleep-EDF Expanded recordings from PhysioNet, verified and resumable (REFERENCE §1).

The files are laid out as on PhysioNet (``<data_home>/sleep-cassette/SC4001E0-PSG.edf``,
``<data_home>/sleep-cassette/SC4001EC-Hypnogram.edf``, ``<data_home>/sleep-telemetry/...``), so
that ``data_home`` can be given as is to :func:`skseqsleep.datasets.load_sleep_edf`.

File names are never guessed and never listed from the server: the official ``SHA256SUMS.txt``
of Sleep-EDF Expanded (1.0.0) is shipped with the package (``data/sleep_edf_sha256.txt``, 398
entries: 306 sleep-cassette files, 88 sleep-telemetry files and 4 top-level tables) and gives
both the exact name of each recording's PSG and hypnogram file (the letters after the night
number vary: ``SC4001E0``/``SC4001EC``, ``SC4261F0``/``SC4261FM``, ...) and its SHA-256 digest.
Only :mod:`urllib` is used.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

from ._common import as_selection

__all__ = ["DEFAULT_URL", "fetch_sleep_edf", "get_data_home", "read_sha256sums"]

#: Root of Sleep-EDF Expanded 1.0.0 on PhysioNet (the folder that holds ``sleep-cassette/``).
DEFAULT_URL = "https://physionet.org/files/sleep-edfx/1.0.0/"

_STUDIES = {
    # study: (sub-folder, file prefix, valid night numbers)
    "SC": ("sleep-cassette", "SC4", (1, 2)),
    "ST": ("sleep-telemetry", "ST7", (1, 2)),
}
_CHUNK = 1 << 20  # bytes read per network call


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Return the folder where Sleep-EDF files are stored (created if needed).

    Parameters
    ----------
    data_home : str or path-like, optional
        Explicit folder. When None: ``$SKSEQSLEEP_DATA/sleep-edf`` if the environment variable
        ``SKSEQSLEEP_DATA`` is set, else ``~/skseqsleep_data/sleep-edf``.

    Returns
    -------
    path : pathlib.Path
        The expanded folder.

    Examples
    --------
    >>> from skseqsleep.datasets.fetch import get_data_home
    >>> get_data_home("/tmp/my-sleep-edf").name
    'my-sleep-edf'
    """
    if data_home is None:
        root = os.environ.get("SKSEQSLEEP_DATA") or os.path.join("~", "skseqsleep_data")
        data_home = Path(root) / "sleep-edf"
    path = Path(data_home).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_sha256sums(source: str | os.PathLike | Mapping[str, str] | None = None) -> dict:
    """Read a table of SHA-256 digests in ``sha256sum`` format (``<hex digest> <relative path>``).

    Parameters
    ----------
    source : path-like or mapping, optional
        None reads the official Sleep-EDF Expanded table shipped with the package. A path reads
        that file. A mapping ``{relative path: hex digest}`` is validated and returned as a dict.

    Returns
    -------
    sums : dict
        ``{relative path (POSIX, e.g. "sleep-cassette/SC4001E0-PSG.edf"): lower-case hex digest}``.

    Examples
    --------
    >>> from skseqsleep.datasets.fetch import read_sha256sums
    >>> sums = read_sha256sums()
    >>> sums["sleep-cassette/SC4001EC-Hypnogram.edf"][:16]
    'a4cf67694ade1b52'
    """
    if source is None:
        text = resources.files("skseqsleep.datasets").joinpath(
            "data", "sleep_edf_sha256.txt").read_text(encoding="ascii")
        where = "the shipped table data/sleep_edf_sha256.txt"
        pairs = _parse_sums(text, where)
    elif isinstance(source, Mapping):
        pairs = [(str(k), str(v)) for k, v in source.items()]
        where = "the checksums mapping"
    else:
        path = Path(source).expanduser()
        pairs = _parse_sums(path.read_text(encoding="utf-8"), str(path))
        where = str(path)
    sums = {}
    for name, digest in pairs:
        digest = digest.lower()
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"{where}: the SHA-256 digest of {name!r} must be 64 hexadecimal "
                             f"characters, found {digest!r}")
        name = name.lstrip("*")  # sha256sum's binary-mode marker
        sums[name.removeprefix("./")] = digest
    return sums


def _parse_sums(text: str, where: str) -> list:
    pairs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise ValueError(f"{where}, line {lineno}: expected '<sha256> <file name>', "
                             f"found {line!r}")
        pairs.append((parts[1].strip(), parts[0]))
    return pairs


def _recording_files(sums: Mapping[str, str], study: str, subject: int, night: int):
    """Return (psg, hypnogram) relative paths of one night, or None when absent from ``sums``."""
    folder, prefix, _ = _STUDIES[study]
    stem = re.escape(f"{folder}/{prefix}{subject:02d}{night}")
    psg = sorted(k for k in sums if re.fullmatch(stem + r"[A-Z0-9]{2}-PSG\.edf", k))
    hyp = sorted(k for k in sums if re.fullmatch(stem + r"[A-Z0-9]{2}-Hypnogram\.edf", k))
    if len(psg) > 1 or len(hyp) > 1:
        raise ValueError(f"the checksum table lists several files for {study} subject {subject} "
                         f"night {night}: {psg + hyp}")
    if not psg or not hyp:
        return None
    return psg[0], hyp[0]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


class _Progress:
    """A one-line progress indicator on stderr (no tqdm dependency)."""

    def __init__(self, name: str, total: int | None, done: int, verbose: bool):
        self.name, self.total, self.done, self.verbose = name, total, done, verbose
        self._last = 0.0

    def update(self, n: int, force: bool = False):
        self.done += n
        now = time.monotonic()
        if not self.verbose or (not force and now - self._last < 0.2):
            return
        self._last = now
        mb = self.done / 1e6
        if self.total:
            msg = f"{mb:.1f}/{self.total / 1e6:.1f} MB ({100 * self.done / self.total:3.0f}%)"
        else:
            msg = f"{mb:.1f} MB"
        sys.stderr.write(f"\r  {self.name}: {msg}")
        sys.stderr.flush()

    def close(self):
        if self.verbose:
            self.update(0, force=True)
            sys.stderr.write("\n")
            sys.stderr.flush()


def _download(url: str, target: Path, expected: str, verbose: bool, timeout: float) -> None:
    """Download ``url`` to ``target`` through ``target.part``, resuming, then verify SHA-256."""
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "skseqsleep (urllib)"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            # the partial file already holds at least the whole file: check it as it is
            err.close()
            _verify_and_move(part, target, expected, url)
            return
        err.close()
        if err.code == 404:
            raise FileNotFoundError(f"the server has no file at {url} (HTTP 404 Not Found); "
                                    "check base_url") from None
        raise OSError(f"downloading {url} failed: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise OSError(f"downloading {url} failed: {_why(err.reason, timeout)}"
                      f"{_kept(part)}") from None
    except (OSError, http.client.HTTPException) as err:
        # urllib wraps only errors raised while sending the request; waiting for the status
        # line and headers can raise TimeoutError, RemoteDisconnected, BadStatusLine, ...
        raise OSError(f"downloading {url} failed: {_why(err, timeout)}{_kept(part)}") from err
    with response:
        status = response.status
        if offset and status == 206:
            content_range = response.headers.get("Content-Range", "")
            match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", content_range)
            if match is None or int(match.group(1)) != offset:
                part.unlink()
                raise OSError(f"downloading {url}: asked to resume at byte {offset} but the "
                              f"server answered Content-Range {content_range!r}; the partial "
                              "file was deleted and the next call downloads from the start")
            mode = "ab"
        else:
            # fresh download, or the server ignored the Range header: restart from zero
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None and length.isdigit() else None
        if verbose:
            how = f" (resuming at {offset / 1e6:.1f} MB)" if offset else ""
            sys.stderr.write(f"Downloading {url}{how}\n")
        progress = _Progress(target.name, total, offset, verbose)
        try:
            with open(part, mode) as f:
                while True:
                    # read1: whatever has arrived, up to _CHUNK bytes; read(_CHUNK) waits for
                    # a full chunk and loses what it got when the server stalls (timeout)
                    block = response.read1(_CHUNK)
                    if not block:
                        break
                    f.write(block)
                    progress.update(len(block))
        except Exception as err:  # socket errors, http.client.IncompleteRead, ...
            progress.close()
            raise OSError(f"downloading {url} was interrupted after {progress.done} bytes "
                          f"({_why(err, timeout)}){_kept(part)}") from err
        progress.close()
    if total is not None and part.stat().st_size != total:
        raise OSError(f"downloading {url}: expected {total} bytes, received "
                      f"{part.stat().st_size}{_kept(part)}")
    _verify_and_move(part, target, expected, url)


def _why(err, timeout: float) -> str:
    """Say in words why a request got no usable answer."""
    if isinstance(err, TimeoutError):
        return f"no answer within {timeout:g} s (timeout)"
    if isinstance(err, http.client.RemoteDisconnected):
        return "the server closed the connection without a response"
    if isinstance(err, http.client.HTTPException):
        return f"the server's answer is not valid HTTP ({type(err).__name__}: {err})"
    if isinstance(err, BaseException):
        return f"{type(err).__name__}: {err}"
    return str(err)


def _kept(part: Path) -> str:
    if part.is_file():
        return f"; the partial file {part} is kept and the next call resumes from it"
    return ""


def _verify_and_move(part: Path, target: Path, expected: str, url: str) -> None:
    found = _sha256(part)
    if found != expected:
        part.unlink()
        raise ValueError(f"checksum mismatch for {target.name} downloaded from {url}: "
                         f"expected SHA-256 {expected}, found {found}; the corrupted file "
                         "was deleted")
    os.replace(part, target)


def fetch_sleep_edf(
    subjects: int | Iterable[int],
    nights: int | Iterable[int] | str = (1, 2),
    data_home: str | os.PathLike | None = None,
    base_url: str = DEFAULT_URL,
    study: str = "SC",
    verbose: bool = True,
    *,
    checksums: str | os.PathLike | Mapping[str, str] | None = None,
    on_missing: str = "warn",
    timeout: float = 60.0,
) -> list[tuple[Path, Path]]:
    """Download Sleep-EDF Expanded PSG and hypnogram files, verified by SHA-256 (REFERENCE §1).

    Each requested night needs two files, the PSG (``SC4{ss}{n}E0-PSG.edf``) and its hypnogram
    (``SC4{ss}{n}E?-Hypnogram.edf``). Their exact names and digests come from the official
    ``SHA256SUMS.txt`` shipped with the package, so nothing is listed or guessed on the server.
    Files already present whose digest matches are not downloaded again (a second call makes
    no request). A download goes to ``<file>.part`` first; an interrupted download is resumed
    from it with an HTTP ``Range`` request on the next call (when the server ignores the range,
    the file is downloaded again from the start). A file whose digest does not match is
    deleted and a :class:`ValueError` names it with the expected and the found digest.

    Parameters
    ----------
    subjects : int or iterable of int
        Subject numbers as in the file names: 0-82 for the sleep-cassette study ``SC4{ss}``
        (Sleep-EDF-SC-20 is ``range(20)``), 1-24 for the sleep-telemetry study ``ST7{ss}``.
    nights : int, iterable of int or {"placebo", "temazepam"}, default=(1, 2)
        Night numbers (1 or 2). For the telemetry study, "placebo" or "temazepam" picks each
        subject's night from the official ST-subjects table (as
        :func:`~skseqsleep.datasets.load_sleep_edf` does).
    data_home : str or path-like, optional
        Destination folder; files go to ``<data_home>/sleep-cassette/`` (or
        ``sleep-telemetry/``) as on PhysioNet. Default: ``$SKSEQSLEEP_DATA/sleep-edf`` when the
        environment variable is set, else ``~/skseqsleep_data/sleep-edf``.
    base_url : str, default=DEFAULT_URL
        ``http://`` or ``https://`` URL of the folder that holds ``sleep-cassette/`` (PhysioNet
        by default; a mirror with the same layout works).
    study : {"SC", "ST"}, default="SC"
        Sleep-cassette (healthy subjects at home) or sleep-telemetry (temazepam study).
    verbose : bool, default=True
        Print which file is downloaded and a progress line to stderr. False prints nothing.
    checksums : path-like or mapping, optional
        Replaces the shipped checksum table, for mirrors that hold other files or for tests:
        a ``sha256sum``-format file or a mapping ``{relative path: hex digest}`` whose keys
        are paths like ``"sleep-cassette/SC4001E0-PSG.edf"``. Default: the official table.
    on_missing : {"warn", "raise"}, default="warn"
        What to do with a requested night that is absent from the dataset although the
        subject exists (sleep-cassette subject 13 night 2, subject 36 night 1, subject 52
        night 1): "warn" leaves it out with a :class:`UserWarning` that lists it (so that
        ``fetch_sleep_edf(range(20))`` fetches the 39 nights of Sleep-EDF-SC-20); "raise"
        makes it a :class:`ValueError`. Either way this is decided before any download, and a
        requested subject with no night at all in the dataset (e.g. sleep-cassette subjects
        39, 68, 69, 78, 79) is always a :class:`ValueError`.
    timeout : float, default=60.0
        Seconds to wait for the server on each network operation.

    Returns
    -------
    files : list of (pathlib.Path, pathlib.Path)
        One ``(psg_path, hypnogram_path)`` pair per night, in (subject, night) order.

    Raises
    ------
    ValueError
        Unknown study, bad ``base_url`` scheme, bad night number, a subject or night number
        that is not a whole number, an empty or repeated selection, a subject absent from the
        dataset, a night absent from it (``on_missing="raise"``), or a checksum mismatch.
    FileNotFoundError
        The server answered 404 for a file (the message has the URL).
    TypeError
        ``subjects`` or ``nights`` given as a string (other than "placebo"/"temazepam") or a
        bool.
    OSError
        Other network failures, with the URL and what happened (no connection, no answer
        within ``timeout`` seconds, a connection closed without a response, an invalid HTTP
        answer, an interrupted transfer); a ``.part`` file is kept for resuming.

    Examples
    --------
    >>> from skseqsleep.datasets import fetch_sleep_edf
    >>> files = fetch_sleep_edf(range(20))  # doctest: +SKIP
    >>> files[0][1].name  # doctest: +SKIP
    'SC4001EC-Hypnogram.edf'
    """
    if study not in _STUDIES:
        raise ValueError(f"study must be one of {sorted(_STUDIES)}, got {study!r}")
    if on_missing not in ("warn", "raise"):
        raise ValueError(f"on_missing must be 'warn' or 'raise', got {on_missing!r}")
    scheme = urllib.parse.urlsplit(str(base_url)).scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"base_url must be an http:// or https:// URL, got {base_url!r} "
                         f"(scheme {scheme!r})")
    # the loader's rules: whole numbers (no strings or bools), distinct, at least one
    subjects = as_selection(subjects, "subjects")
    for subject in subjects:
        if not 0 <= subject <= 99:
            raise ValueError(f"subjects must be integers in 0..99, got {subject!r}")
    if isinstance(nights, str):
        from .sleep_edf import _nights_for  # the ST-subjects table (placebo/temazepam)

        nights_of = {s: _nights_for(study, s, nights) for s in subjects}
    else:
        nights = as_selection(nights, "nights")
        valid_nights = _STUDIES[study][2]
        for night in nights:
            if night not in valid_nights:
                raise ValueError(f"nights must be in {valid_nights} (or 'placebo'/'temazepam' "
                                 f"for ST), got {night!r}")
        nights_of = {s: list(nights) for s in subjects}
    sums = read_sha256sums(checksums)

    wanted, missing, absent_subjects = [], [], []
    for subject in subjects:
        found_any = False
        for night in (1, 2):
            names = _recording_files(sums, study, subject, night)
            found_any = found_any or names is not None
            if night not in nights_of[subject]:
                continue
            if names is None:
                missing.append(f"subject {subject} night {night}")
            else:
                wanted.append(names)
        if not found_any:
            absent_subjects.append(subject)
    if absent_subjects:
        raise ValueError(f"{study} subject(s) {absent_subjects} are not part of Sleep-EDF "
                         "Expanded (no file in the checksum table)")
    if missing:
        msg = (f"these {study} nights are not part of Sleep-EDF Expanded (absent from the "
               f"checksum table): {', '.join(missing)}")
        if on_missing == "raise":
            raise ValueError(msg)
        warnings.warn(msg + "; they are skipped", UserWarning, stacklevel=2)

    home = get_data_home(data_home)
    base = str(base_url).rstrip("/") + "/"
    result = []
    for names in wanted:
        paths = []
        for rel in names:
            target = home.joinpath(*rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            expected = sums[rel]
            if target.is_file():
                if _sha256(target) == expected:
                    paths.append(target)
                    continue
                if verbose:
                    sys.stderr.write(f"{target} does not match its SHA-256: downloading it "
                                     "again\n")
                target.unlink()
            url = base + urllib.parse.quote(rel)
            _download(url, target, expected, verbose, timeout)
            paths.append(target)
        result.append(tuple(paths))
    return result
