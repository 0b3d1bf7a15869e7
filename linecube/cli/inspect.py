"""Summarise a MAPS/MMU file or a store, optionally saving a grid of one galaxy's line maps.

For a file: lines present, map size, mask fraction and median S/N per line.
For a store: galaxies, map size, lines and the rejection table. Every open checks that the
catalogue, the arrays and store.json agree and that every galaxy's chunks are there;
--verify also reads every galaxy and compares it with the checksum recorded at ingest
(exit status 2, naming the damaged galaxies, if any differs).

Examples::

    linecube inspect manga-8485-1901-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz --png ha.png
    linecube inspect store/ --galaxy 8485-1901 --png 8485-1901.png
    linecube inspect store/ --verify
"""

from __future__ import annotations

from pathlib import Path

HELP = "summarise a MAPS/MMU file or a store; --png draws a galaxy's line maps"


def add_arguments(parser):
    parser.add_argument("target", help="a MAPS (.fits/.fits.gz), MMU (.hdf5/.h5) file or a store")
    parser.add_argument("--png", help="save a grid of one galaxy's line maps to this PNG")
    parser.add_argument("--galaxy", help="PLATEIFU to draw (store or MMU file; default: first)")
    parser.add_argument("--extension", choices=["GFLUX", "SFLUX"], default="GFLUX",
                        help="emission-line flux extension of a file (default: %(default)s)")
    parser.add_argument("--stretch", choices=["asinh", "log"], default="asinh",
                        help="display stretch of a file's flux (default: %(default)s)")
    parser.add_argument("--verify", action="store_true",
                        help="store: read every galaxy and check it against its checksum")


def run(args) -> int:
    from linecube.errors import InputFileError
    from linecube.preprocess.inspect import inspect_file, plot_line_grid
    from linecube.store.store import inspect_store

    target = Path(args.target)
    if target.is_dir():
        info = inspect_store(target)
        print(f"store      {info['path']}")
        print(f"galaxies   {info['galaxies']}")
        print(f"size       {info['size']}x{info['size']}")
        print(f"lines      {len(info['lines'])}: {', '.join(info['lines'])}")
        rej = info["rejections"]
        print(f"rejections {len(rej)}")
        for _, row in rej.iterrows():
            kind = f" [{row['kind']}]" if row["kind"] else ""
            print(f"  {row['file']}{kind}: {row['reason']}")
        if args.verify:
            problems = info["store"].verify()
            for line in problems:
                print(f"  damaged: {line}")
            if problems:
                more = f" (and {len(problems) - 1} more, listed above)" if len(problems) > 1 else ""
                raise InputFileError(target, f"verify failed: {problems[0]}{more}")
            print(f"verified   {info['galaxies']} galaxies: arrays match their checksums")
        if args.png:
            store = info["store"]
            if len(store) == 0:
                raise InputFileError(target, "the store holds no galaxy to draw")
            ids = list(store.catalogue["plateifu"].astype(str))
            name = args.galaxy or ids[0]
            if name not in ids:
                raise InputFileError(target, f"no galaxy {name!r} in the store")
            i = ids.index(name)
            arrays = store.read([i])
            out = plot_line_grid(arrays["x"][0], arrays["weight"][0].astype(bool),
                                 info["lines"], args.png, title=name, stretched=True)
            print(f"wrote {out}")
        return 0

    if args.verify:
        raise InputFileError(target, "--verify checks a store directory, not a file")
    summaries = inspect_file(target, extension=args.extension)
    for s in summaries:
        g = s.galaxy
        print(f"file       {g.meta['source']}")
        print(f"galaxy     {g.plateifu}  mangaid {g.mangaid or '-'}  release {g.meta['release']}"
              f"  daptype {g.meta['daptype'] or '-'}")
        print(f"quality    DAPQUAL {g.meta['dapqual']}  DRP3QUAL {g.meta['drp3qual']}")
        print(f"map size   {g.shape[0]}x{g.shape[1]}  centre (y, x) {g.center}")
        print(f"lines      {len(g.lines)} in EMLINE_{args.extension}")
        print(s.table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print()
    if args.png:
        chosen = summaries[0]
        if args.galaxy:
            match = [s for s in summaries if s.galaxy.plateifu == args.galaxy]
            if not match:
                raise InputFileError(target, f"no galaxy {args.galaxy!r} in the file")
            chosen = match[0]
        g = chosen.galaxy
        out = plot_line_grid(g.flux, g.good, g.lines, args.png, title=g.plateifu,
                             kind=args.stretch)
        print(f"wrote {out}")
    return 0
