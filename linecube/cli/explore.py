"""Write (and optionally serve) the interactive explorer page of an analysis directory.

The page works offline: open OUT/index.html in a browser, or pass --serve to serve it on
http://127.0.0.1:PORT/ (this machine only). Marks (checked / interesting) are kept in the
browser's localStorage and exported as CSV from the page.

Example:
    linecube explore runs/analysis --out runs/explorer --serve --port 8765
"""

from __future__ import annotations

import argparse

from linecube.cli.common import add_page_arguments

HELP = "write the interactive explorer page of an analysis (optionally serve it on localhost)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the verb's arguments."""
    add_page_arguments(parser, "needs umap_x/umap_y", "page")
    parser.add_argument("--k", type=int, default=8,
                        help="nearest neighbours listed per galaxy (default: %(default)s)")
    parser.add_argument("--thumb-line", default=None,
                        help="line shown in hover thumbnails (default: Ha-6564)")
    parser.add_argument("--panel-size", type=int, default=32,
                        help="largest map side (pixels) in the galaxy panels; larger maps are "
                        "block-averaged (default: %(default)s)")
    parser.add_argument("--serve", action="store_true",
                        help="serve the page on 127.0.0.1 after writing it")
    parser.add_argument("--port", type=int, default=8765,
                        help="port for --serve (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Build the page; serve it until interrupted when --serve is given."""
    from linecube.viz.explore import build_explorer, serve

    index = build_explorer(args.analysis_dir, args.out, k=args.k, labels=args.labels,
                           label_columns=args.label_columns, thumb_line=args.thumb_line,
                           panel_size=args.panel_size)
    print(f"explorer written to {index}")
    if args.serve:
        server = serve(index.parent, args.port)
        host, port = server.server_address[:2]
        print(f"serving on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
        try:
            server.serve_forever()
        finally:
            server.server_close()
    return 0
