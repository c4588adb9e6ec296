"""A researcher's workload at 224 px: ResNet-50-shaped model, real photos, every corruption, four methods, five
explanation metrics, fisher_lmax and I-ASIDE — where the time goes, as ratios measured in one process.

The model is :func:`robustviz.testing.resnets.resnet50` (random weights, plain torch, 1000 classes); the images are
scikit-image's photos, shorter side resized to 224 and centre-cropped. Everything is printed as a ratio to a model
forward pass timed in the same process on the same images, so the numbers hold on a busy machine. The script runs
itself twice in subprocesses — every library on one thread (``OMP_NUM_THREADS=1`` etc. set before import) and with
all threads — and prints both reports:

- each corruption's time / a ResNet-18 forward on the same 8 images (target ≤ 0.3);
- evaluator forward / plain forward for 8 images (``RegionComputer._forward`` vs ``model(x)``, target ≤ 1.1);
- a real ``rv.evaluate`` run into a zarr store, with every component timed: time per input image / bare ResNet-50
  forward per image (inclusive: a metric's time contains the method calls it makes), and for RISE,
  insertion/deletion and I-ASIDE the ratio to their *floor*, the plain forward passes of the same number of images
  (target ≤ 1.2);
- kernel share of CPU time (``getrusage`` ru_stime / (ru_utime + ru_stime), target < 10 %), peak RSS, store size.

    python benchmarks/workload_224.py --quick        # a few minutes on 2 busy cores
    python benchmarks/workload_224.py                # papers' settings on more cells: long on a CPU
    python benchmarks/workload_224.py --threads 1    # one report only
    python benchmarks/workload_224.py --no-evaluate  # every corruption at every severity, no evaluate run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small settings: a few minutes on 2 busy cores")
    parser.add_argument("--no-evaluate", action="store_true",
                        help="stop after the corruption and forward timings (the full evaluate run takes hours on "
                             "a CPU: RISE's 4000 masks on every cell)")
    parser.add_argument("--threads", default="both", help="'1', 'all' or 'both' (default: two subprocesses)")
    parser.add_argument("--images", type=int, default=8, help="photos in the corruption and forward timings")
    parser.add_argument("--eval-images", type=int, default=0, help="photos in the evaluate run (0: by mode)")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median of adjacent ratios)")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def main() -> None:
    args = _parse()
    if args.threads == "both":
        for threads in ("1", "all"):
            env = dict(os.environ)
            if threads == "1":
                env.update({name: "1" for name in THREAD_VARS})
            argv = _without_option(sys.argv[1:], "--threads")
            print(f"=== {'one thread' if threads == '1' else 'all threads'} ===", flush=True)
            subprocess.run([sys.executable, __file__, *argv, "--threads", threads], env=env, check=True)
        return
    run(args)


def _without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` less ``option`` and its value, written either ``--option value`` or ``--option=value``."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            kept.append(arg)
    return kept


# ---------------------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> None:
    import resource
    import shutil
    import statistics
    import tempfile
    import time
    from pathlib import Path

    import torch

    import robustviz as rv
    from robustviz.evaluate.engine import RegionComputer
    from robustviz.evaluate.plan import Plan
    from robustviz.perturbations.corruptions import ALL_CORRUPTIONS
    from robustviz.rng import derive_seeds
    from robustviz.testing.resnets import resnet18, resnet50

    if args.threads == "1":
        torch.set_num_threads(1)
    quick = args.quick
    device = torch.device(args.device)
    usage_start = resource.getrusage(resource.RUSAGE_SELF)
    torch.manual_seed(0)
    model = resnet50().to(device)
    small = resnet18().to(device)
    photos = load_photos(args.images).to(device)
    print(f"{len(photos)} photos 224 px, torch threads {torch.get_num_threads()}, device {device}, "
          f"{'quick' if quick else 'full'} settings", flush=True)

    def best(fn, repeats=args.repeats):
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return min(times)

    def timed(fn):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    with torch.no_grad():
        small(photos)
        bare = best(lambda: model(photos), 3) / len(photos)  # ResNet-50 seconds per image
    print(f"bare ResNet-50 forward: {bare * 1e3:.1f} ms/image (batch {len(photos)})")

    # -- corruptions vs a ResNet-18 forward on the same batch -----------------------------------------------------
    severities = [3] if quick else [1, 2, 3, 4, 5]
    print(f"\ncorruption (severities {severities}): time / ResNet-18 forward on the same {len(photos)} images "
          f"[target ≤ 0.3], time per image / ResNet-50 forward per image")
    worst = 0.0
    for name in ALL_CORRUPTIONS:
        perturbation = rv.create("perturbation", name)
        ratios, per_image = [], []
        for severity in severities:
            seeds = derive_seeds(0, range(len(photos)), name, severity)
            perturbation(photos, severity, seeds=seeds)  # warm-up
            adjacent = []
            for _ in range(args.repeats):  # adjacent pairs; the median ratio is robust to load changes
                spent = timed(lambda: perturbation(photos, severity, seeds=seeds))
                with torch.no_grad():
                    forward = timed(lambda: small(photos))
                adjacent.append(spent / forward)
                per_image.append(spent / len(photos) / bare)
            ratios.append(statistics.median(adjacent))
        worst = max(worst, max(ratios))
        print(f"  {name:<20}{max(ratios):>6.2f}×  {min(per_image):>6.3f}× r50/img", flush=True)
    print(f"  {'worst':<20}{worst:>6.2f}×")

    # -- evaluator forward vs plain forward ---------------------------------------------------------------------------
    data8 = rv.ImageSet(photos.cpu(), torch.arange(len(photos)), [f"class{i}" for i in range(1000)])
    spec8 = _spec(rv, len(photos), ["brightness"], [], [], args.device)
    computer = RegionComputer(Plan.from_spec(spec8, data=data8, models={"resnet50": model}))
    with torch.no_grad():
        ids = torch.arange(len(photos))
        pairs = [(timed(lambda: computer._forward(model, photos, ids)), timed(lambda: model(photos)))
                 for _ in range(args.repeats)]
    overhead = statistics.median(a / b for a, b in pairs)
    print(f"\nevaluator forward / plain forward, {len(photos)} images: {overhead:.3f} [target ≤ 1.1] "
          f"(forward block {computer.forward_block})")

    if args.no_evaluate:
        return
    # -- a real evaluate run, every component timed -------------------------------------------------------------------
    n_eval = args.eval_images or (2 if quick else 8)
    corruptions = ["gaussian_noise"] if quick else list(ALL_CORRUPTIONS)
    eval_severities = [3] if quick else [1, 3, 5]
    methods = ["saliency", "grad_cam", {"name": "integrated_gradients", "n_steps": 4 if quick else 32},
               {"name": "rise", "n_masks": 32 if quick else 4000, "batch_masks": 256}]
    step = 224 * 224 // 4 if quick else None  # quick: 5 points per insertion/deletion curve; paper: 225
    metrics = [{"name": "deletion_auc", "step": step}, {"name": "insertion_auc", "step": step}, "cosine",
               "spearman", {"name": "max_sensitivity", "n_samples": 1 if quick else 10},
               {"name": "fisher_lmax", "at": "clean", "mode": "power", "max_iter": 2 if quick else 20},
               {"name": "iaside", "n_bands": 4 if quick else 8, "n_samples": n_eval}]
    spec = _spec(rv, n_eval, corruptions, methods, metrics, args.device, eval_severities)
    data = rv.ImageSet(photos[:n_eval].cpu(), torch.arange(n_eval), [f"class{i}" for i in range(1000)])
    timers = ComponentTimers(model)
    store = Path(tempfile.mkdtemp(prefix="rv-workload-")) / "cube.zarr"
    usage_eval = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with timers:
        rv.evaluate(spec, store=store, data=data, models={"resnet50": model}, progress=False)
    wall = time.perf_counter() - start
    usage_end = resource.getrusage(resource.RUSAGE_SELF)
    size = sum(path.stat().st_size for path in store.rglob("*") if path.is_file())
    shutil.rmtree(store.parent, ignore_errors=True)
    cells = len(corruptions) * len(eval_severities) + 1
    print(f"\nevaluate: {n_eval} images × {cells} cells ({len(corruptions)} corruptions × severities "
          f"{eval_severities} + clean) in {wall:.1f} s; store {size / 1e6:.2f} MB")
    print(f"  {'component':<24}{'calls':>6}{'images in':>10}{'time/img ÷ fwd':>16}{'÷ floor':>9}{'÷ own fwd':>10}")
    for name, record in sorted(timers.records.items(), key=lambda item: -item[1]["seconds"]):
        per_image = record["seconds"] / max(1, record["images"]) / bare
        floor = record["forward_images"] * bare
        if name in timers.floored and floor:
            to_floor = f"{record['seconds'] / floor:>8.2f}×{record['seconds'] / record['forward_seconds']:>9.2f}×"
        else:
            to_floor = ""
        print(f"  {name:<24}{record['calls']:>6}{record['images']:>10}{per_image:>15.1f}×{to_floor}")
    print(f"  (÷ floor: time / plain forwards (batch {len(photos)}, {bare * 1e3:.0f} ms/image) of the images the "
          "component passes through the model [target ≤ 1.2]; ÷ own fwd: time / the time of its own forward calls)")

    for label, begin, end in (("evaluate run", usage_eval, usage_end), ("whole process", usage_start, usage_end)):
        user, system = end.ru_utime - begin.ru_utime, end.ru_stime - begin.ru_stime
        faults = end.ru_minflt - begin.ru_minflt
        print(f"kernel share of CPU, {label}: {system / max(1e-9, user + system):.1%} [target < 10 %] "
              f"({faults / 1e6:.2f} M minor page faults)")
    print(f"peak RSS: {usage_end.ru_maxrss / 1024:.0f} MB")


def _spec(rv, n, corruptions, methods, metrics, device, severities=(3,)):
    return rv.EvaluationSpec.from_dict(dict(
        name="workload_224", models=["resnet50"], dataset="photos-224", n_samples=n, perturbations=corruptions,
        severities=list(severities), methods=methods, metrics=metrics, batch_size=8, seed=0, device=device,
        n_examples=0))


def load_photos(count: int):
    """scikit-image photos, shorter side resized to 224 (antialiased bilinear), centre-cropped to 224×224; mirrored
    copies when more are asked for than ship."""
    import numpy as np
    import skimage.data
    import torch
    import torch.nn.functional as F

    names = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "camera",
             "coins", "moon", "clock", "brick", "grass", "gravel")
    images = []
    for name in names:
        array = np.asarray(getattr(skimage.data, name)())
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        x = torch.from_numpy(np.ascontiguousarray(array[:, :, :3])).permute(2, 0, 1).float().div(255)[None]
        height, width = x.shape[-2:]
        scale = 224 / min(height, width)
        size = (max(224, round(height * scale)), max(224, round(width * scale)))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        top, left = (size[0] - 224) // 2, (size[1] - 224) // 2
        images.append(x[0, :, top:top + 224, left:left + 224].clamp(0, 1))
    batch = torch.stack(images)
    while len(batch) < count:
        batch = torch.cat([batch, batch.flip(-1)])
    return batch[:count].contiguous()


class ComponentTimers:
    """Wraps the component base classes' entry points and the model's forward: inclusive seconds, calls, input
    images and model-forward images per component name."""

    floored = {"rise", "deletion_auc", "insertion_auc", "iaside"}

    def __init__(self, model):
        self.model = model
        self.records: dict[str, dict[str, float]] = {}
        self.stack: list[str] = []
        self._saved: list = []

    def _record(self, name):
        return self.records.setdefault(name, {"seconds": 0.0, "calls": 0, "images": 0, "forward_images": 0,
                                                   "forward_seconds": 0.0})

    def _wrap(self, cls, attribute, images_of):
        import time

        original = getattr(cls, attribute)
        timers = self

        def timed(obj, *args, **kwargs):
            name = obj.name
            timers.stack.append(name)
            start = time.perf_counter()
            try:
                return original(obj, *args, **kwargs)
            finally:
                timers.stack.pop()
                record = timers._record(name)
                record["seconds"] += time.perf_counter() - start
                record["calls"] += 1
                record["images"] += images_of(args)

        setattr(cls, attribute, timed)
        self._saved.append((cls, attribute, original))

    def __enter__(self):
        import time

        from robustviz.methods.base import Method
        from robustviz.metrics.base import Metric, ModelMetric
        from robustviz.perturbations.base import Perturbation

        self._wrap(Perturbation, "__call__", lambda args: args[0].shape[0])
        self._wrap(Method, "attribute", lambda args: args[1].shape[0])
        self._wrap(Metric, "__call__", lambda args: args[0].images.shape[0])
        pending = [ModelMetric]
        while pending:  # model metrics override compute: wrap every class that defines it
            cls = pending.pop()
            pending.extend(cls.__subclasses__())
            if "compute" in vars(cls):
                self._wrap(cls, "compute", lambda args: args[1].shape[0])

        def before(module, inputs):
            self._forward_start = time.perf_counter()
            for name in set(self.stack):
                self._record(name)["forward_images"] += inputs[0].shape[0]

        def after(module, inputs, output):
            for name in set(self.stack):
                self._record(name)["forward_seconds"] += time.perf_counter() - self._forward_start

        self._hooks = [self.model.register_forward_pre_hook(before), self.model.register_forward_hook(after)]
        return self

    def __exit__(self, *exc):
        for hook in self._hooks:
            hook.remove()
        for cls, attribute, original in reversed(self._saved):
            setattr(cls, attribute, original)
        return False


if __name__ == "__main__":
    main()
