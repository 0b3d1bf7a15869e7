import gzip
import io
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from linecube.errors import ConfigError, InputFileError
from linecube.io.dapall import write_dapall
from linecube.io.download import (
    DAPALL_NAME,
    download_dapall,
    download_maps,
    maps_url,
    select_plateifus,
    verify_file,
)
from linecube.io.maps_writer import write_maps

DAPTYPE = "HYB10-MILESHC-MASTARSSP"


def maps_bytes(tmp_path, plateifu):
    path = tmp_path / f"{plateifu}.fits.gz"
    rng = np.random.default_rng(int(plateifu.split("-")[1]))
    write_maps(path, {"EMLINE_GFLUX": rng.random((35, 6, 6)).astype("f4")},
               {"PLATEIFU": plateifu, "MANGAID": f"1-{plateifu}"})
    return path.read_bytes()


class Server:
    """A local HTTP server with Range support, a dropped connection and a request log."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}  # path -> bytes sent before cutting the first reply
        self.log: list[tuple[str, str | None]] = []
        self.ranges = True  # False: ignore Range headers, like some mirrors
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.log.append((self.path, self.headers.get("Range")))
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                if match and outer.ranges:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                cut = outer.drop_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/sas/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def add_maps(self, plateifu, data):
        self.files["/sas/" + maps_url(plateifu, "", DAPTYPE).lstrip("/")] = data


@pytest.fixture
def server():
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def fetch(plateifus, out, server, **kw):
    return download_maps(plateifus, out, base_url=server.url, daptype=DAPTYPE, connections=2,
                         progress=False, backoff_s=0.01, timeout_s=5, **kw)


def test_maps_url():
    assert maps_url("8485-1901") == (
        "https://data.sdss.org/sas/dr17/manga/spectro/analysis/v3_1_1/3.1.0/"
        "HYB10-MILESHC-MASTARSSP/8485/1901/manga-8485-1901-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz")
    with pytest.raises(ConfigError, match="PLATE-IFUDESIGN"):
        maps_url("8485_1901")


def test_download_404_dropped_connection_and_rerun(tmp_path, server):
    good, dropped = maps_bytes(tmp_path, "8485-1901"), maps_bytes(tmp_path, "7443-12703")
    server.add_maps("8485-1901", good)
    server.add_maps("7443-12703", dropped)
    server.drop_after[next(p for p in server.files if "7443" in p)] = len(dropped) // 3
    out = tmp_path / "out"

    report = fetch(["8485-1901", "7443-12703", "9999-1901"], out, server)
    by_id = {r.path.name.split("-MAPS")[0]: r for r in report.results}
    assert by_id["manga-8485-1901"].status == "downloaded"
    assert (out / by_id["manga-8485-1901"].path.name).read_bytes() == good
    resumed = by_id["manga-7443-12703"]
    assert resumed.status == "downloaded" and resumed.attempts == 2
    assert resumed.path.read_bytes() == dropped
    assert resumed.bytes == len(dropped)  # the second request fetched only the rest
    ranges = [rng for path, rng in server.log if "7443" in path]
    assert ranges == [None, f"bytes={len(dropped) // 3}-"]
    missing = by_id["manga-9999-1901"]
    assert missing.status == "failed" and missing.reason == "HTTP 404 Not Found"
    assert missing.attempts == 1  # a 404 is not retried
    assert not missing.path.exists() and not list(out.glob("*.part"))
    assert "failed: 1" in report.summary() and "HTTP 404" in report.summary()

    server.log.clear()
    again = fetch(["8485-1901", "7443-12703"], out, server)
    assert [r.status for r in again.results] == ["present", "present"] and not server.log


def test_partial_file_from_an_earlier_run_is_resumed(tmp_path, server):
    data = maps_bytes(tmp_path, "8485-1901")
    server.add_maps("8485-1901", data)
    out = tmp_path / "out"
    out.mkdir()
    name = maps_url("8485-1901").rsplit("/", 1)[1]
    (out / (name + ".part")).write_bytes(data[:1000])
    [result] = fetch(["8485-1901"], out, server).results
    assert result.status == "downloaded" and result.bytes == len(data) - 1000
    assert (out / name).read_bytes() == data
    assert server.log[0][1] == "bytes=1000-"


def test_complete_part_file_and_server_without_range(tmp_path, server):
    a, b = maps_bytes(tmp_path, "8485-1901"), maps_bytes(tmp_path, "7443-12703")
    server.add_maps("8485-1901", a)
    server.add_maps("7443-12703", b)
    out = tmp_path / "out"
    out.mkdir()
    name_a = maps_url("8485-1901").rsplit("/", 1)[1]
    (out / (name_a + ".part")).write_bytes(a)  # complete, killed before the rename
    [result] = fetch(["8485-1901"], out, server).results
    assert result.status == "downloaded" and result.bytes == 0  # the server answered 416
    assert (out / name_a).read_bytes() == a

    server.ranges = False
    name_b = maps_url("7443-12703").rsplit("/", 1)[1]
    (out / (name_b + ".part")).write_bytes(b"garbage that must not be kept")
    [result] = fetch(["7443-12703"], out, server).results
    assert result.status == "downloaded" and (out / name_b).read_bytes() == b


def test_corrupted_file_is_caught_and_not_renamed(tmp_path, server):
    raw = bytearray(gzip.decompress(maps_bytes(tmp_path, "8485-1901")))
    with fits.open(io.BytesIO(bytes(raw))) as hdul:
        i = hdul["EMLINE_GFLUX"].fileinfo()["datLoc"] + 100
    raw[i] ^= 0xFF  # one flipped byte in the data: gzip is fine, the FITS DATASUM is not
    server.add_maps("8485-1901", gzip.compress(bytes(raw)))
    [result] = fetch(["8485-1901"], tmp_path / "out", server, retries=1).results
    assert result.status == "failed" and result.attempts == 2
    assert result.reason.startswith("integrity check failed: FITS DATASUM mismatch in HDU")
    assert "EMLINE_GFLUX" in result.reason
    assert not list((tmp_path / "out").iterdir())


def test_verify_file(tmp_path):
    data = maps_bytes(tmp_path, "8485-1901")
    verify_file(tmp_path / "8485-1901.fits.gz")
    (tmp_path / "cut.fits.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="truncated gzip stream"):
        verify_file(tmp_path / "cut.fits.gz")
    (tmp_path / "page.fits").write_bytes(b"<html>not found</html>")
    with pytest.raises(InputFileError, match="not a readable FITS file"):
        verify_file(tmp_path / "page.fits")


def test_dapall_download_and_selection(tmp_path, server):
    rows = pd.DataFrame({"PLATEIFU": ["8485-1901", "7443-12703", "9000-3701"],
                         "MANGAID": ["1-1", "1-2", "1-3"], "Z": [0.02, 0.08, 0.04],
                         "DAPDONE": [True, True, False]})
    write_dapall(tmp_path / DAPALL_NAME, rows)
    server.files["/sas/" + DAPALL_NAME] = (tmp_path / DAPALL_NAME).read_bytes()
    report = download_dapall(tmp_path / "out", base_url=server.url, progress=False)
    assert report.results[0].status == "downloaded"
    got = tmp_path / "out" / DAPALL_NAME
    assert select_plateifus(got) == ["8485-1901", "7443-12703"]
    assert select_plateifus(got, ["Z < 0.05"]) == ["8485-1901"]
    with pytest.raises(ConfigError, match="NOPE"):
        select_plateifus(got, ["NOPE > 1"])


def test_download_verb(tmp_path, server, capsys):
    from linecube.cli import main

    rows = pd.DataFrame({"PLATEIFU": ["8485-1901", "7443-12703"], "MANGAID": ["1-1", "1-2"],
                         "Z": [0.02, 0.08]})
    write_dapall(tmp_path / DAPALL_NAME, rows)
    server.files["/sas/" + DAPALL_NAME] = (tmp_path / DAPALL_NAME).read_bytes()
    server.add_maps("8485-1901", maps_bytes(tmp_path, "8485-1901"))
    out = tmp_path / "out"
    common = ["--out", str(out), "--base-url", server.url, "--no-progress", "--retries", "0"]

    assert main(["download", "--dapall-only", *common]) == 0
    assert (out / DAPALL_NAME).exists()
    assert main(["download", "--from-dapall", str(out / DAPALL_NAME), "--where", "Z < 0.05",
                 *common]) == 0
    assert "1 PLATEIFUs selected" in capsys.readouterr().out
    assert [p.name for p in out.glob("manga-*")] == [
        "manga-8485-1901-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz"]

    (tmp_path / "ids.txt").write_text("8485-1901\n7443-12703\n")
    assert main(["download", "--plateifu", f"@{tmp_path / 'ids.txt'}", *common]) == 1
    out_text = capsys.readouterr().out
    assert "already present: 1" in out_text and "failed: 1" in out_text
    assert "manga-7443-12703-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz: HTTP 404" in out_text
