"""UMAP of the latents, seeded; coordinates saved as umap_x, umap_y (umap_z) in the catalogue.

Every umap.UMAP parameter is available: the common ones as flags, any other with
-o name=value (e.g. -o densmap=true).

Example:
  linecube umap analysis --n-neighbors 30 --min-dist 0.05 --seed 1
"""

from __future__ import annotations

HELP = "2-D or 3-D UMAP of the latent space"


def add_arguments(parser):
    from linecube.analysis.umap import UmapConfig
    from linecube.cli.common import add_config_arguments

    parser.add_argument("analysis", help="analysis directory (after linecube embed)")
    add_config_arguments(parser, UmapConfig, override_aliases=("--option",),
                         override_help="set a setting, or pass any other umap.UMAP keyword "
                         "(repeatable; wins over --config and the flags), e.g. -o densmap=true")


def run(args):
    from linecube.analysis.umap import UmapConfig, run_umap
    from linecube.cli.common import config_from_args

    cfg = config_from_args(UmapConfig, args, extra_field="extra")
    cat = run_umap(args.analysis, cfg)
    cols = ", ".join(("umap_x", "umap_y", "umap_z")[: cfg.n_components])
    print(f"UMAP of {len(cat)} galaxies written to {args.analysis}/catalogue.parquet ({cols})")
    return 0
