"""fetch_sleep_edf against a real HTTP server on 127.0.0.1 started by the test.

The server serves a temporary folder in the PhysioNet layout and implements HTTP Range itself
(``http.server`` does not), so resuming is exercised for real. It records every request and
can be told to ignore Range headers, to cut a transfer short, or to serve a corrupted file.
"""

import hashlib
import http.server
import re
import threading
from pathlib import Path

import pytest

from skseqsleep.datasets.fetch import fetch_sleep_edf, read_sha256sums

SHIPPED = Path(__file__).resolve().parents[1] / "skseqsleep" / "datasets" / "data" / \
    "sleep_edf_sha256.txt"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        path = srv.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and srv.honor_range:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.stall_after is not None:
            # announce the full length, send part of it, then go silent with the connection
            # open (a stalled server): the client's read times out
            sent, srv.stall_after = body[:srv.stall_after], None
            srv.bytes_sent += len(sent)
            self.wfile.write(sent)
            self.wfile.flush()
            srv.release.wait(10)
            self.close_connection = True
            return
        if srv.cut_after is not None:
            body = body[:srv.cut_after]  # announce the full length, send less, hang up
            srv.cut_after = None
            self.close_connection = True
        # counted before writing: the client can finish reading (and the test go on to
        # check the count) before this handler thread runs another line after the write
        srv.bytes_sent += len(body)
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "server"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.root, httpd.requests, httpd.bytes_sent = root, [], 0
    httpd.honor_range, httpd.cut_after = True, None
    httpd.stall_after, httpd.release = None, threading.Event()
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/files/"
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


def _publish(server, names, size=50_000):
    """Write small files under the server's /files/ folder; return {rel path: digest}."""
    sums = {}
    for i, rel in enumerate(names):
        data = bytes((j * 7 + i * 13) % 251 for j in range(size + i))
        path = server.root / "files" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        sums[rel] = hashlib.sha256(data).hexdigest()
    return sums


NIGHT_FILES = ["sleep-cassette/SC4001E0-PSG.edf", "sleep-cassette/SC4001EC-Hypnogram.edf",
               "sleep-cassette/SC4002E0-PSG.edf", "sleep-cassette/SC4002EC-Hypnogram.edf"]


def test_fresh_download_then_nothing_downloaded_again(server, tmp_path, capsys):
    sums = _publish(server, NIGHT_FILES)
    home = tmp_path / "home"
    files = fetch_sleep_edf(0, nights=(1, 2), data_home=home, base_url=server.url,
                            checksums=sums, verbose=False)
    assert files == [(home / NIGHT_FILES[0], home / NIGHT_FILES[1]),
                     (home / NIGHT_FILES[2], home / NIGHT_FILES[3])]
    for rel in NIGHT_FILES:
        assert (home / rel).read_bytes() == (server.root / "files" / rel).read_bytes()
    assert sorted(p for p, _ in server.requests) == sorted("/files/" + r for r in NIGHT_FILES)
    assert not list(home.rglob("*.part"))
    assert capsys.readouterr().err == ""  # verbose=False prints nothing
    # the folder is laid out as load_sleep_edf expects (PhysioNet layout)
    from skseqsleep.datasets.sleep_edf import find_sleep_edf_files

    index = find_sleep_edf_files(home)
    assert [(index[("SC", 0, n)]["psg"], index[("SC", 0, n)]["hypnogram"]) for n in (1, 2)] \
        == files

    n = len(server.requests)
    again = fetch_sleep_edf([0], nights=(1, 2), data_home=home, base_url=server.url,
                            checksums=sums, verbose=True)
    assert again == files
    assert len(server.requests) == n  # no request at all


def test_verbose_prints_url_and_progress(server, tmp_path, capsys):
    sums = _publish(server, NIGHT_FILES[:2])
    fetch_sleep_edf(0, nights=1, data_home=tmp_path / "h", base_url=server.url,
                    checksums=sums, verbose=True)
    err = capsys.readouterr().err
    assert f"Downloading {server.url}sleep-cassette/SC4001E0-PSG.edf" in err
    assert "SC4001EC-Hypnogram.edf: 0.1/0.1 MB (100%)" in err


def test_names_come_from_the_table_not_from_a_pattern(server, tmp_path):
    # subject 26 uses other letters (SC4261F0 / SC4261FM in the official list)
    official = read_sha256sums()
    names = [n for n in official if n.startswith("sleep-cassette/SC4261")]
    assert sorted(names) == ["sleep-cassette/SC4261F0-PSG.edf",
                             "sleep-cassette/SC4261FM-Hypnogram.edf"]
    sums = _publish(server, names)
    files = fetch_sleep_edf(26, nights=1, data_home=tmp_path / "h", base_url=server.url,
                            checksums=sums, verbose=False)
    assert [p.name for p in files[0]] == ["SC4261F0-PSG.edf", "SC4261FM-Hypnogram.edf"]


def test_partial_file_is_resumed_with_range(server, tmp_path):
    sums = _publish(server, NIGHT_FILES[:2])
    home = tmp_path / "home"
    full = (server.root / "files" / NIGHT_FILES[0]).read_bytes()
    part = home / (NIGHT_FILES[0] + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(full[:12_345])
    server.bytes_sent = 0
    fetch_sleep_edf(0, nights=1, data_home=home, base_url=server.url, checksums=sums,
                    verbose=False)
    assert ("/files/" + NIGHT_FILES[0], "bytes=12345-") in server.requests
    assert (home / NIGHT_FILES[0]).read_bytes() == full
    assert not part.exists()
    hyp_size = (server.root / "files" / NIGHT_FILES[1]).stat().st_size
    assert server.bytes_sent == len(full) - 12_345 + hyp_size  # only the missing bytes


def test_interrupted_transfer_keeps_part_and_next_call_resumes(server, tmp_path):
    sums = _publish(server, NIGHT_FILES[:2])
    home = tmp_path / "home"
    server.cut_after = 20_000
    with pytest.raises(OSError, match=r"interrupted.*SC4001E0-PSG\.edf\.part.*resumes"):
        fetch_sleep_edf(0, nights=1, data_home=home, base_url=server.url, checksums=sums,
                        verbose=False)
    part = home / (NIGHT_FILES[0] + ".part")
    assert part.stat().st_size == 20_000
    assert not (home / NIGHT_FILES[0]).exists()
    fetch_sleep_edf(0, nights=1, data_home=home, base_url=server.url, checksums=sums,
                    verbose=False)
    assert server.requests[-2] == ("/files/" + NIGHT_FILES[0], "bytes=20000-")
    assert hashlib.sha256((home / NIGHT_FILES[0]).read_bytes()).hexdigest() == sums[
        NIGHT_FILES[0]]


def test_stalled_transfer_keeps_the_bytes_received_and_next_call_resumes(server, tmp_path):
    sums = _publish(server, NIGHT_FILES[:2])
    home = tmp_path / "home"
    server.stall_after = 20_000
    with pytest.raises(OSError, match=r"interrupted after 20000 bytes .*no answer within "
                                      r"0\.5 s.*resumes"):
        fetch_sleep_edf(0, nights=1, data_home=home, base_url=server.url, checksums=sums,
                        verbose=False, timeout=0.5)
    server.release.set()
    part = home / (NIGHT_FILES[0] + ".part")
    assert part.stat().st_size == 20_000      # what arrived before the stall is not lost
    fetch_sleep_edf(0, nights=1, data_home=home, base_url=server.url, checksums=sums,
                    verbose=False)
    assert server.requests[-2] == ("/files/" + NIGHT_FILES[0], "bytes=20000-")
    assert hashlib.sha256((home / NIGHT_FILES[0]).read_bytes()).hexdigest() == sums[
        NIGHT_FILES[0]]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    sums = _publish(server, NIGHT_FILES[:2])
    server.honor_range = False
    home = tmp_path / "home"
    full = (server.root / "files" / NIGHT_FILES[0]).read_bytes()
    part = home / (NIGHT_FILES[0] + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(full[:30_000])  # appending a full 200 answer to it would corrupt the file
    fetch_sleep_edf(0, nights=1, data_home=home, base_url=server.url, checksums=sums,
                    verbose=False)
    assert ("/files/" + NIGHT_FILES[0], "bytes=30000-") in server.requests
    assert (home / NIGHT_FILES[0]).read_bytes() == full


def test_complete_part_file_answered_416_is_verified_and_kept(server, tmp_path):
    sums = _publish(server, NIGHT_FILES[:2])
    home = tmp_path / "home"
    full = (server.root / "files" / NIGHT_FILES[0]).read_bytes()
    part = home / (NIGHT_FILES[0] + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(full)
    fetch_sleep_edf(0, nights=1, data_home=home, base_url=server.url, checksums=sums,
                    verbose=False)
    assert (home / NIGHT_FILES[0]).read_bytes() == full


def test_corrupted_file_on_server_raises_and_is_not_kept(server, tmp_path):
    sums = _publish(server, NIGHT_FILES[:2])
    expected = sums[NIGHT_FILES[0]]
    bad = server.root / "files" / NIGHT_FILES[0]
    data = bytearray(bad.read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    found = hashlib.sha256(bytes(data)).hexdigest()
    home = tmp_path / "home"
    with pytest.raises(ValueError) as info:
        fetch_sleep_edf(0, nights=1, data_home=home, base_url=server.url, checksums=sums,
                        verbose=False)
    msg = str(info.value)
    assert "SC4001E0-PSG.edf" in msg and expected in msg and found in msg
    folder = home / "sleep-cassette"
    assert [p.name for p in folder.iterdir()] == []  # neither the file nor its .part


def test_local_file_with_wrong_digest_is_downloaded_again(server, tmp_path):
    sums = _publish(server, NIGHT_FILES[:2])
    home = tmp_path / "home"
    fetch_sleep_edf(0, nights=1, data_home=home, base_url=server.url, checksums=sums,
                    verbose=False)
    (home / NIGHT_FILES[1]).write_bytes(b"truncated")
    n = len(server.requests)
    fetch_sleep_edf(0, nights=1, data_home=home, base_url=server.url, checksums=sums,
                    verbose=False)
    assert [p for p, _ in server.requests[n:]] == ["/files/" + NIGHT_FILES[1]]
    assert (home / NIGHT_FILES[1]).read_bytes() == (server.root / "files" /
                                                    NIGHT_FILES[1]).read_bytes()


def test_404_names_the_url(server, tmp_path):
    sums = _publish(server, NIGHT_FILES[:2])
    (server.root / "files" / NIGHT_FILES[1]).unlink()
    with pytest.raises(FileNotFoundError) as info:
        fetch_sleep_edf(0, nights=1, data_home=tmp_path / "h", base_url=server.url,
                        checksums=sums, verbose=False)
    assert server.url + "sleep-cassette/SC4001EC-Hypnogram.edf" in str(info.value)
    assert "404" in str(info.value)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/files/", "file:///tmp/", "physionet.org/x"])
def test_bad_base_url_scheme(server, tmp_path, url):
    with pytest.raises(ValueError, match="http:// or https://"):
        fetch_sleep_edf(0, nights=1, data_home=tmp_path / "h", base_url=url, verbose=False)
    assert server.requests == []


def test_absent_nights_and_subjects_are_handled_before_any_download(server, tmp_path):
    # subject 13 has only night 1 (REFERENCE §1); the official table pins that
    official = read_sha256sums()
    names = [n for n in official if n.startswith(("sleep-cassette/SC412",
                                                  "sleep-cassette/SC413"))]
    assert len(names) == 6
    sums = _publish(server, names)
    home = tmp_path / "h"
    with pytest.raises(ValueError, match=r"SC nights .*: subject 13 night 2$"):
        fetch_sleep_edf([12, 13], nights=(1, 2), data_home=home, base_url=server.url,
                        checksums=sums, verbose=False, on_missing="raise")
    with pytest.raises(ValueError, match="subject 13 night 2"):  # the shipped table too
        fetch_sleep_edf(13, data_home=home, base_url=server.url, verbose=False,
                        on_missing="raise")
    # a subject without any file is always an error (39 is absent from Sleep-EDF SC)
    with pytest.raises(ValueError, match=r"SC subject\(s\) \[39\] are not part"):
        fetch_sleep_edf([12, 39], data_home=home, base_url=server.url, verbose=False)
    assert server.requests == []
    # default: the absent night is left out with a warning, the others are fetched
    with pytest.warns(UserWarning, match=r": subject 13 night 2; they are skipped"):
        files = fetch_sleep_edf([12, 13], nights=(1, 2), data_home=home,
                                base_url=server.url, checksums=sums, verbose=False)
    assert [f[0].name for f in files] == ["SC4121E0-PSG.edf", "SC4122E0-PSG.edf",
                                          "SC4131E0-PSG.edf"]
    assert len(server.requests) == 6


def test_telemetry_placebo_nights_from_the_st_subjects_table(server, tmp_path):
    # ST-subjects.xls: subject 1 took the placebo in night 1, subject 2 in night 2
    official = read_sha256sums()
    names = [n for n in official if n.startswith(("sleep-telemetry/ST701",
                                                  "sleep-telemetry/ST702"))]
    sums = _publish(server, names)
    files = fetch_sleep_edf([1, 2], nights="placebo", study="ST", data_home=tmp_path / "h",
                            base_url=server.url, checksums=sums, verbose=False)
    assert [(p.parent.name, p.name) for f in files for p in f] == [
        ("sleep-telemetry", "ST7011J0-PSG.edf"), ("sleep-telemetry", "ST7011JP-Hypnogram.edf"),
        ("sleep-telemetry", "ST7022J0-PSG.edf"), ("sleep-telemetry", "ST7022JM-Hypnogram.edf")]
    assert len(server.requests) == 4


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="study must be one of"):
        fetch_sleep_edf(0, study="XX", data_home=tmp_path)
    with pytest.raises(ValueError, match=r"nights must be in \(1, 2\) .*, got 3"):
        fetch_sleep_edf(0, nights=3, data_home=tmp_path)
    with pytest.raises(ValueError, match=r"subjects must be integers in 0\.\.99, got 100"):
        fetch_sleep_edf([100], data_home=tmp_path)
    # the loader's rules (load_sleep_edf): no strings, bools or fractions, no empty or
    # repeated selection (True was taken for night 1, 1.0 gave a bare TypeError)
    for kw, err, msg in [
            ({"subjects": ["1"]}, TypeError, r"subjects .* got str '1' in it"),
            ({"nights": True}, TypeError, r"nights .* the bool True"),
            ({"nights": 1.5}, ValueError, r"nights must hold whole numbers, got 1\.5"),
            ({"subjects": []}, ValueError, "subjects is empty"),
            ({"subjects": [4, 4]}, ValueError, r"subjects has duplicates: \[4, 4\]"),
            ({"nights": (1, 1)}, ValueError, r"nights has duplicates: \[1, 1\]")]:
        with pytest.raises(err, match=msg):
            fetch_sleep_edf(**{"subjects": 0, **kw}, data_home=tmp_path,
                            base_url="http://127.0.0.1:9/")
    with pytest.raises(ValueError, match="64 hexadecimal"):
        fetch_sleep_edf(0, data_home=tmp_path, checksums={NIGHT_FILES[0]: "abc"})


def test_default_data_home_follows_environment(monkeypatch, tmp_path):
    from skseqsleep.datasets.fetch import get_data_home

    monkeypatch.setenv("SKSEQSLEEP_DATA", str(tmp_path / "root"))
    assert get_data_home() == tmp_path / "root" / "sleep-edf"
    monkeypatch.delenv("SKSEQSLEEP_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert get_data_home() == tmp_path / "user" / "skseqsleep_data" / "sleep-edf"


def test_checksums_file_override(server, tmp_path):
    sums = _publish(server, NIGHT_FILES[:2])
    table = tmp_path / "SUMS.txt"
    table.write_text("".join(f"{d} *{n}\n" for n, d in sums.items()))  # binary-mode marker
    files = fetch_sleep_edf(0, nights=1, data_home=tmp_path / "h", base_url=server.url,
                            checksums=table, verbose=False)
    assert files[0][0].is_file() and files[0][1].is_file()


def test_shipped_table_is_the_official_one(shared_dir):
    official_text = (shared_dir / "data" / "sleep-edf" / "SHA256SUMS.txt").read_text()
    official = dict(reversed(line.split()) for line in official_text.splitlines() if line)
    shipped = read_sha256sums()
    assert shipped == official
    # 153 sleep-cassette nights and 44 sleep-telemetry nights, a PSG and a hypnogram each,
    # plus RECORDS, RECORDS-v1, SC-subjects.xls and ST-subjects.xls
    assert len(shipped) == 2 * 153 + 2 * 44 + 4
    records = (shared_dir / "data" / "sleep-edf" / "RECORDS").read_text().split()
    assert len(records) == 197 and set(records) <= set(shipped)
    assert sum(n.endswith("-Hypnogram.edf") for n in shipped) == 197
    assert SHIPPED.read_text() == official_text  # facts copied byte for byte


def test_real_hypnogram_verifies_against_shipped_sum(shared_dir, server, tmp_path):
    real = shared_dir / "data" / "sleep-edf" / "SC4001EC-Hypnogram.edf"
    digest = hashlib.sha256(real.read_bytes()).hexdigest()
    assert read_sha256sums()["sleep-cassette/SC4001EC-Hypnogram.edf"] == digest
    # the downloader accepts the real file, served over HTTP, with the shipped digest (the PSG
    # is a small stand-in: the real one is not available here)
    hyp_rel = "sleep-cassette/SC4001EC-Hypnogram.edf"
    sums = _publish(server, ["sleep-cassette/SC4001E0-PSG.edf"])
    (server.root / "files" / hyp_rel).write_bytes(real.read_bytes())
    sums[hyp_rel] = read_sha256sums()[hyp_rel]
    files = fetch_sleep_edf(0, nights=1, data_home=tmp_path / "h", base_url=server.url,
                            checksums=sums, verbose=False)
    assert files[0][1].read_bytes() == real.read_bytes()


class _RawServer:
    """A bare TCP server on 127.0.0.1: accepts connections and either never answers
    (``"silent"``: reads the request, sends nothing) or closes them without a response
    (``"close"``)."""

    def __init__(self, behaviour):
        import socket

        self.behaviour = behaviour
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/files/"
        self.requests = []
        self.conns = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            try:
                self.requests.append(conn.recv(65536).decode("latin-1"))
            except OSError:
                pass
            if self.behaviour == "close":
                conn.close()
            else:
                self.conns.append(conn)  # held open, never answered

    def close(self):
        self._stop.set()
        self.thread.join(2)
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def raw_server(request):
    srv = _RawServer(request.param)
    yield srv
    srv.close()


@pytest.mark.parametrize(("raw_server", "timeout", "why"), [
    ("silent", 0.5, "no answer within 0.5 s"),
    ("close", 2, "closed the connection without a response"),
], indirect=["raw_server"])
def test_server_without_an_answer_names_url_and_why(raw_server, timeout, why, tmp_path):
    import time

    sums = {rel: hashlib.sha256(b"x").hexdigest() for rel in NIGHT_FILES[:2]}
    home = tmp_path / "home"
    part = home / (NIGHT_FILES[0] + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"12345")  # a partial download from an earlier call
    start = time.monotonic()
    with pytest.raises(OSError) as info:
        fetch_sleep_edf(0, nights=1, data_home=home, base_url=raw_server.url,
                        checksums=sums, verbose=False, timeout=timeout)
    assert time.monotonic() - start < 4
    msg = str(info.value)
    assert raw_server.url + "sleep-cassette/SC4001E0-PSG.edf" in msg
    assert why in msg
    # the module's error, not a bare TimeoutError or http.client.RemoteDisconnected
    assert type(info.value) is OSError
    assert part.read_bytes() == b"12345"  # kept for resuming
    assert len(raw_server.requests) == 1
    assert "Range: bytes=5-" in raw_server.requests[0]
