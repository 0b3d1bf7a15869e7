"""Download DR17 MaNGA DAP MAPS files (and the DAPall file) from the SDSS Science Archive Server.

Files are fetched over parallel connections with retries; interrupted downloads resume where
they stopped (HTTP Range) and files are checked (gzip stream, FITS CHECKSUM/DATASUM) before
they get their final name. Files already in --out are skipped. The exit status is 1 if any
file failed (the summary lists each with the reason).

examples:
  linecube download --dapall-only --out data/
  linecube download --plateifu 8485-1901 7443-12703 --out data/maps
  linecube download --from-dapall data/dapall-v3_1_1-3.1.0.fits --where "Z < 0.05" --out data/maps
  linecube download --plateifu 8485-1901 --out maps --base-url https://mirror.example.org/dr17/
"""

from __future__ import annotations

import argparse

HELP = "download DR17 MAPS files and the DAPall file from the SDSS SAS (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from linecube.io.download import DEFAULT_DAPTYPE, SAS_DR17

    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--plateifu", nargs="+", metavar="PLATEIFU",
                      help="PLATEIFUs to fetch, e.g. 8485-1901 (or @FILE: one per line)")
    what.add_argument("--from-dapall", metavar="DAPALL",
                      help="fetch every DAPDONE row of this DAPall file that passes --where")
    what.add_argument("--dapall-only", action="store_true", help="fetch only the DAPall file")
    parser.add_argument("--where", action="append", default=[], metavar="EXPR",
                        help="filter on DAPall columns (pandas query), e.g. \"Z < 0.05\"; "
                             "repeat to combine with AND")
    parser.add_argument("--dedupe", action="store_true",
                        help="with --from-dapall: one observation per MANGAID")
    parser.add_argument("--dapall", action="store_true",
                        help="also fetch the DAPall file into --out")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--base-url", default=SAS_DR17, metavar="URL",
                        help="the analysis/v3_1_1/3.1.0/ folder of the SAS or a mirror "
                             "(default: %(default)s)")
    parser.add_argument("--daptype", default=DEFAULT_DAPTYPE, help="DAP analysis type "
                        "(default: %(default)s)")
    parser.add_argument("--connections", type=int, default=4, metavar="N",
                        help="parallel downloads (default: %(default)s)")
    parser.add_argument("--retries", type=int, default=4, metavar="N",
                        help="further attempts per file after a failure (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="network timeout per request in seconds (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from linecube.errors import ConfigError, InputFileError
    from linecube.io.download import (
        DownloadReport,
        download_dapall,
        download_maps,
        select_plateifus,
    )

    if args.where and not args.from_dapall:
        raise ConfigError("--where filters the rows of --from-dapall")
    common = {"connections": args.connections, "progress": not args.no_progress,
              "retries": args.retries, "timeout_s": args.timeout}
    report = DownloadReport()
    if args.dapall or args.dapall_only:
        report = download_dapall(args.out, base_url=args.base_url, **common)
    if not args.dapall_only:
        if args.from_dapall:
            plateifus = select_plateifus(args.from_dapall, args.where, args.daptype, args.dedupe)
            print(f"{len(plateifus)} PLATEIFUs selected from {args.from_dapall}")
        else:
            plateifus = []
            for item in args.plateifu:
                if item.startswith("@"):
                    listing = Path(item[1:])
                    if not listing.is_file():
                        raise InputFileError(listing, "PLATEIFU list not found")
                    plateifus += [s.strip() for s in listing.read_text().split() if s.strip()]
                else:
                    plateifus.append(item)
        maps = download_maps(plateifus, args.out, base_url=args.base_url,
                             daptype=args.daptype, **common)
        report = DownloadReport(report.results + maps.results, report.seconds + maps.seconds)
    print(report.summary())
    return 1 if report.failed else 0
