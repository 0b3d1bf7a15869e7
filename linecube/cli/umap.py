"""UMAP of the latents, seeded; coordinates saved as umap_x, umap_y (umap_z) in the catalogue.

Every umap.UMAP parameter is available: the common ones as flags, any other with
-o name=value (e.g. -o densmap=true).

Example:
  linecube umap analysis --n-neighbors 30 --min-dist 0.05 --seed 1
"""

from __future__ import annotations

HELP = "2-D or 3-D UMAP of the latent space"


def add_arguments(parser):
    parser.add_argument("analysis", help="analysis directory (after linecube embed)")
    parser.add_argument("--config", help="TOML/YAML file with UMAP settings")
    parser.add_argument("--n-components", type=int, choices=[2, 3], help="2 or 3 (2)")
    parser.add_argument("--n-neighbors", type=int, help="neighbourhood size (15)")
    parser.add_argument("--min-dist", type=float, help="minimum embedded distance (0.1)")
    parser.add_argument("--spread", type=float, help="scale of embedded points (1.0)")
    parser.add_argument("--metric", help="latent-space metric (euclidean)")
    parser.add_argument("--n-epochs", type=int, help="optimisation epochs (UMAP's default)")
    parser.add_argument("--learning-rate", type=float, help="(1.0)")
    parser.add_argument("--init", help="spectral, random, pca (spectral)")
    parser.add_argument("--set-op-mix-ratio", type=float, help="(1.0)")
    parser.add_argument("--local-connectivity", type=float, help="(1.0)")
    parser.add_argument("--repulsion-strength", type=float, help="(1.0)")
    parser.add_argument("--negative-sample-rate", type=int, help="(5)")
    parser.add_argument(
        "--no-standardise",
        dest="standardise",
        action="store_false",
        default=None,
        help="skip the robust standardisation of latent dimensions",
    )
    parser.add_argument("--seed", type=int, help="random_state (0)")
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other umap.UMAP keyword",
    )


def run(args):
    from linecube.analysis.cli_support import make_config
    from linecube.analysis.umap import UmapConfig, run_umap
    from linecube.config import parse_overrides

    names = (
        "n_components",
        "n_neighbors",
        "min_dist",
        "spread",
        "metric",
        "n_epochs",
        "learning_rate",
        "init",
        "set_op_mix_ratio",
        "local_connectivity",
        "repulsion_strength",
        "negative_sample_rate",
        "standardise",
        "seed",
    )
    values = {name: getattr(args, name) for name in names}
    extra = parse_overrides(args.option)
    if extra:
        values["extra"] = extra
    cfg = make_config(UmapConfig, args.config, values)
    cat = run_umap(args.analysis, cfg)
    cols = ", ".join(("umap_x", "umap_y", "umap_z")[: cfg.n_components])
    print(f"UMAP of {len(cat)} galaxies written to {args.analysis}/catalogue.parquet ({cols})")
    return 0
