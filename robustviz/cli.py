"""``robustviz`` command line: demo, run, verify, figures, info, train-zoo."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

#: The 15 ImageNet-C benchmark corruptions and the 4 extras, in the benchmark's order.
IMAGENET_C = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
              "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
              "jpeg_compression")
IMAGENET_C_EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ZOO = ("smallcnn-standard", "smallcnn-noise", "tinyresnet-standard", "tinyresnet-noise", "tinyvit-standard",
       "tinyvit-noise")
# The demo runs under ``preset: fast`` so that the whole suite fits a laptop CPU in a few minutes: 4 integration
# steps, 16 RISE masks, 4 deletion steps at 64 px, Fisher information on the clean images only. ``preset: paper``
# (docs/guide/papers_settings) gives the publications' settings.
DEMO_PRESET = "fast"
DEMO_METHODS = ("saliency", "integrated_gradients", "grad_cam", "gradcam_plus_plus", "rise")
DEMO_METRICS = ("consistency", "responsiveness", "cosine", "deletion_auc", "fisher_lmax", "iaside")


def demo_spec(n_samples: int = 8, *, full: bool = True):
    """The embedded default spec: the shipped zoo on generated shapes under every registered ImageNet-C corruption,
    with the explanation methods and metrics that are registered (the suite grows with the package)."""
    from . import registry
    from .spec import EvaluationSpec

    def available(kind: str, entries: Sequence) -> list:
        names = set(registry.list_names(kind))
        return [e for e in entries if (e if isinstance(e, str) else e["name"]) in names]

    perturbations = available("perturbation", IMAGENET_C + IMAGENET_C_EXTRA)
    return EvaluationSpec(
        name="robustviz-demo", models=list(ZOO), dataset={"name": "shapes", "image_size": 64},
        n_samples=n_samples, perturbations=perturbations,
        methods=available("method", DEMO_METHODS) if full else [],
        metrics=available("metric", DEMO_METRICS) if full else [],
        batch_size=64, seed=0, device="auto", n_examples=4, preset=DEMO_PRESET)


def _print_warnings(ds) -> None:
    """The cube's clean-prediction warnings, loudly, on stderr (a model at chance must not pass unnoticed)."""
    for message in ds.rv.warnings():
        print(f"\n!!! WARNING: {message}", file=sys.stderr)


def _print_table(ds) -> None:
    import warnings

    import pandas as pd

    if not bool((ds["severity"] > 0).any()):  # clean-only cube (perturbations: [])
        clean = ds.rv.accuracy().isel(perturbation=0, severity=0).to_pandas()
        print("\nTop-1 accuracy on the clean images (no perturbations)")
        print(clean.to_string(float_format=lambda v: f"{v:.3f}"))
        _print_warnings(ds)
        return
    table = ds.rv.accuracy_table()
    table.insert(1, "mean (sev 1-5)", table.iloc[:, 1:].mean(axis=1))
    with pd.option_context("display.width", 160, "display.max_columns", 8, "display.precision", 3):
        print("\nTop-1 accuracy: clean, mean over corruptions, and per corruption (mean over severities 1-5)")
        print(table.iloc[:, :8].to_string(float_format=lambda v: f"{v:.3f}"))
    extra = [name for name in ds.rv.scores if name not in ("correct", "prob_true", "confidence", "cosine")]
    if extra:
        with warnings.catch_warnings():  # printed once by _print_warnings
            warnings.simplefilter("ignore")
            summary = ds.rv.summary(extra, by=("model",))
        print("\nExplanation and model-robustness scores (means over perturbations, severities, samples)")
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if "srs" in ds:
        print("\nI-ASIDE spectral robustness score per model")
        print(ds["srs"].to_pandas().to_string(float_format=lambda v: f"{v:.3f}"))
    _print_warnings(ds)


def cmd_demo(args: argparse.Namespace) -> int:
    from .cube.io import to_netcdf
    from .evaluate import evaluate
    from .figures import severity_curves

    out = Path(args.out)
    spec = demo_spec(args.n_samples, full=not args.quick)
    started = time.perf_counter()
    from .evaluate.presets import describe

    print(f"robustviz demo: {len(spec.models)} models × {len(spec.perturbations)} perturbations × "
          f"{len(spec.severities)} severities × {len(spec.methods)} methods × {spec.n_samples} samples")
    print(f"preset: {describe(spec.preset)}")
    ds = evaluate(spec, store=out / "cube.zarr", progress=not args.no_progress, overwrite=args.overwrite)
    netcdf = to_netcdf(ds, out / "cube.nc")
    fig = severity_curves(ds, "correct")
    for suffix in ("png", "pdf"):
        fig.savefig(out / f"severity_curves.{suffix}")
    _print_table(ds)
    print(f"\nfinished in {time.perf_counter() - started:.1f} s")
    print(f"cube (zarr):     {out / 'cube.zarr'}")
    print(f"cube (netCDF):   {netcdf}")
    print(f"severity curves: {out / 'severity_curves.png'}, {out / 'severity_curves.pdf'}")
    print(f"open it:         python -c \"import robustviz as rv; ds = rv.open_cube('{out / 'cube.zarr'}')\"")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .cube.io import to_netcdf
    from .evaluate import evaluate
    from .spec import EvaluationSpec

    spec = EvaluationSpec.from_yaml(Path(args.spec))
    status = _check_cost(spec, args)
    if status is not None:
        return status
    store = Path(args.store) if args.store else Path(args.spec).with_suffix(".zarr")
    client = None
    if args.scheduler:
        from .evaluate.distributed import make_client

        client = make_client(args.scheduler, workers=args.workers)
    if store.exists() and not (args.resume or args.overwrite):
        from .evaluate.store import holds_results, is_store

        if not is_store(store) and not (store.is_dir() and not any(store.iterdir())):
            print(f"error: {store} exists and is not a robustviz store; choose another --store path (robustviz "
                  f"never writes into or deletes what it did not create)", file=sys.stderr)
            return 2
        if is_store(store) and holds_results(store):  # a store without results (a failed first run) is redone
            print(f"error: {store} exists; pass --resume to continue it or --overwrite to start over",
                  file=sys.stderr)
            return 2
    try:
        ds = evaluate(spec, store=store, client=client, progress=not args.no_progress, overwrite=args.overwrite)
    finally:
        if client is not None:
            client.close()
    if args.netcdf:
        to_netcdf(ds, args.netcdf)
    _print_table(ds)
    print(f"\ncube: {store}")
    return 0


#: Exit status of ``run`` when the estimate exceeds the limit (without ``--force``).
EXIT_OVER_LIMIT = 3


def _check_cost(spec, args: argparse.Namespace) -> int | None:
    """``--dry-run``: print the estimate and stop; with a limit (``--max-hours`` or ``limits.max_hours``), refuse
    a run estimated above it unless ``--force``. ``None``: go ahead with the run."""
    max_hours = args.max_hours if args.max_hours is not None else dict(spec.limits).get("max_hours")
    if not args.dry_run and max_hours is None:
        return None
    from .evaluate.estimate import estimate

    print(f"estimating {spec.name!r} (probes of each component on one block of the real model)…", flush=True)
    result = estimate(spec, max_hours=max_hours)
    print(result)
    if result.exceeds_limit:
        message = (f"warning: estimated {result.total_seconds / 3600:.2f} h > limit {max_hours:g} h"
                   + ("; running anyway (--force)" if args.force else "; pass --force to run anyway"))
        print(message, file=sys.stderr)
        if not args.force:
            return EXIT_OVER_LIMIT
    return 0 if args.dry_run else None


def cmd_verify(args: argparse.Namespace) -> int:
    """Check a store's content hashes; exit 0 only when nothing is damaged (pending regions are not damage)."""
    from .cube.integrity import verify_store

    store = Path(args.store)
    if not store.is_dir():
        print(f"error: no zarr store at {store}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    report = verify_store(store)
    for line in report.lines():
        print(f"damaged: {line}")
    print(f"{report.summary()} ({time.perf_counter() - started:.2f} s)")
    if not report.ok:
        print(f"to repair: robustviz run SPEC.yaml --store {store} --resume (damaged regions are recomputed)",
              file=sys.stderr)
        return 1
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from .cube.io import open_cube

    try:
        from .figures.export import write_all
    except ImportError:
        print("error: figure export is not available in this build", file=sys.stderr)
        return 2
    ds = open_cube(args.cube)
    for path in write_all(ds, Path(args.out), formats=tuple(args.format)):
        print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .cube.io import open_cube
    from .panels import PanelError
    from .panels.report import ReportError, timed_report

    ds = open_cube(args.cube, validate=False)  # a store still being filled is fine: missing cells show as missing
    try:
        path, seconds, size = timed_report(ds, Path(args.out), max_points=args.points, n_examples=args.examples,
                                           figures=not args.no_figures)
    except (ReportError, PanelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{path} ({size / 1e6:.1f} MB, built in {seconds:.1f} s) — open it in a browser; no kernel or network needed")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import platform

    import captum
    import torch
    import xarray
    import zarr

    from . import __version__, registry
    from .evaluate.plan import resolve_device

    print(f"robustviz {__version__}  python {platform.python_version()}  torch {torch.__version__}  "
          f"captum {captum.__version__}  xarray {xarray.__version__}  zarr {zarr.__version__}")
    print(f"device (auto): {resolve_device('auto')}  cuda available: {torch.cuda.is_available()}")
    for kind in registry.KINDS:
        names = registry.list_names(kind)
        print(f"{kind}s ({len(names)}): {', '.join(names)}")
    return 0


def cmd_train_zoo(args: argparse.Namespace) -> int:
    from .models.train import train_zoo

    overrides = {"threads": args.threads} if args.threads else {}
    results = train_zoo(Path(args.out), epochs=args.epochs, seed=args.seed, names=args.names, **overrides)
    for name, accuracy in results.items():
        print(f"{name}: held-out accuracy {accuracy:.3f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robustviz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="evaluate the shipped zoo on generated shapes (offline, a few minutes)")
    demo.add_argument("--out", default="robustviz-demo", help="output folder (default: robustviz-demo)")
    demo.add_argument("--n-samples", type=int, default=8, help="samples per cell (default: 8)")
    demo.add_argument("--quick", action="store_true", help="accuracy only: no explanation methods or metrics")
    demo.add_argument("--overwrite", action="store_true", help="discard an existing demo cube")
    demo.add_argument("--no-progress", action="store_true")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="evaluate a spec (YAML) into a zarr cube")
    run.add_argument("spec")
    run.add_argument("--store", help="zarr directory (default: SPEC with .zarr suffix)")
    run.add_argument("--resume", action="store_true", help="continue an existing store of the same spec")
    run.add_argument("--overwrite", action="store_true",
                     help="discard an existing robustviz store (any other path is refused)")
    run.add_argument("--netcdf", help="also write a netCDF copy here")
    run.add_argument("--scheduler", help="dask scheduler address, or 'local' for a LocalCluster")
    run.add_argument("--workers", type=int, default=2, help="workers of a local cluster (default 2)")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--dry-run", action="store_true",
                     help="print model passes and estimated time per component, then stop")
    run.add_argument("--max-hours", type=float, default=None,
                     help="refuse to start when the estimate exceeds this (default: the spec's limits.max_hours)")
    run.add_argument("--force", action="store_true", help="run even when the estimate exceeds the limit")
    run.set_defaults(func=cmd_run)

    verify = sub.add_parser("verify", help="check a store's content hashes; list damaged regions (exit 1)")
    verify.add_argument("store")
    verify.set_defaults(func=cmd_verify)

    figures = sub.add_parser("figures", help="write every paper figure and LaTeX table of a cube")
    figures.add_argument("cube")
    figures.add_argument("--out", default="figures")
    figures.add_argument("--format", nargs="+", default=["pdf", "svg"])
    figures.set_defaults(func=cmd_figures)

    report = sub.add_parser("report", help="write a self-contained static HTML report of a cube")
    report.add_argument("cube")
    report.add_argument("--out", default="report", help="directory (gets report.html) or .html file")
    report.add_argument("--points", type=int, default=24, help="samples per cell in the per-sample view")
    report.add_argument("--examples", type=int, default=1, help="stored examples in the gallery")
    report.add_argument("--no-figures", action="store_true", help="leave out the paper figures")
    report.set_defaults(func=cmd_report)

    info = sub.add_parser("info", help="versions, device and registered names")
    info.set_defaults(func=cmd_info)

    train = sub.add_parser("train-zoo", help="retrain the shipped tiny zoo on shapes")
    train.add_argument("--out", default="zoo-weights")
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=None,
                       help="torch threads; --threads 1 reproduces the shipped weights bit for bit")
    train.add_argument("--names", nargs="+", default=None, help="train only these zoo models")
    train.set_defaults(func=cmd_train_zoo)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """robustviz's own warnings as one plain line on stderr (no source path); others as Python shows them."""
    import warnings

    if category.__module__.split(".")[0] == "robustviz":
        print(f"warning: {message}", file=file or sys.stderr)
    else:
        (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: Sequence[str] | None = None) -> int:
    from .cli_errors import EXIT_SIGINT, EXIT_SIGTERM, Terminated, explain, interrupted_line, report, sigterm_raises
    from .registry import RegistryError
    from .spec import SpecError
    from .validation import InputError

    import warnings

    from .cube.checks import CleanAccuracyWarning

    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=CleanAccuracyWarning)  # printed loudly after the table instead
    shown_by, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        with sigterm_raises():
            return args.func(args)
    except KeyboardInterrupt:
        print(interrupted_line(args, "Ctrl-C"), file=sys.stderr)
        return EXIT_SIGINT
    except Terminated:
        print(interrupted_line(args, "SIGTERM"), file=sys.stderr)
        return EXIT_SIGTERM
    except (SpecError, InputError, RegistryError, FileNotFoundError) as error:
        report(str(error))
        return 2
    except Exception as error:  # store/cube errors carry their own fix; anything else is a bug: keep the trace
        from .cube.schema import CubeError
        from .evaluate.store import StoreError

        message = str(error) if isinstance(error, (StoreError, CubeError)) else explain(error, args)
        if message is None:
            raise
        report(message)
        return 2
    finally:
        warnings.showwarning = shown_by


if __name__ == "__main__":
    sys.exit(main())
