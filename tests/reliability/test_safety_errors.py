"""Issue 15 points 6, 7 and 10: what a model, a spec or the machine does wrong is one clear line, never a silently
wrong cube or a traceback from the CLI."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import robustviz as rv
from robustviz.cli import main
from robustviz.evaluate.store import CubeStore
from robustviz.spec import SpecError
from tests.evaluate.helpers import _tiny_model, crash_spec
from tests.evaluate.test_engine import assert_cubes_equal


def small(**changes):
    """One model (so ``models={"test_tiny": ...}`` replaces every model), two sample chunks."""
    return crash_spec(**{"models": ["test_tiny"], "n_samples": 6, "sample_chunk": 3, "perturbations": ["test_noise"],
                         **changes})


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


# -- point 6: non-finite logits -----------------------------------------------------------------------------------
class NaNOnBrightImages(torch.nn.Module):
    """The tiny model, but NaN logits for images brighter than ``threshold`` on average."""

    def __init__(self, threshold: float):
        super().__init__()
        self.inner, self.threshold = _tiny_model(), threshold
        self.cam_layer, self.class_names = self.inner.cam_layer, self.inner.class_names

    def forward(self, images):
        logits = self.inner(images)
        bright = images.mean(dim=(1, 2, 3)) > self.threshold
        return torch.where(bright[:, None], torch.full_like(logits, float("nan")), logits)


def test_nan_logits_are_an_error_naming_the_model_and_the_samples(tmp_path):
    spec = small(sample_chunk=None)
    data = rv.create("dataset", "shapes", n_samples=6, image_size=32, seed=spec.seed)
    brightness = data.images.mean(dim=(1, 2, 3))
    threshold = float(brightness.sort().values[3])  # samples brighter than the 4th brightest: two of them
    expected = sorted(int(i) for i in data.sample_ids[brightness > threshold])
    assert len(expected) == 2
    store = tmp_path / "cube.zarr"
    with pytest.raises(rv.InputError, match=r"model 'test_tiny' returned non-finite logits") as caught:
        rv.evaluate(spec, store=store, models={"test_tiny": NaNOnBrightImages(threshold)}, progress=False)
    assert f"sample id(s) {', '.join(map(str, expected))};" in str(caught.value)
    assert not store.exists() or not CubeStore(store).done_mask().any()  # nothing counted as done


# -- point 7: YAML alias bomb -------------------------------------------------------------------------------------
def bomb(where: str) -> str:
    """A 9-level "billion laughs" (9⁹ ≈ 387 million strings) in under 500 bytes, under ``extra`` or a component's
    parameters."""
    levels = ['  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for name, previous in zip("bcdefghi", "abcdefgh"):
        levels.append(f"  {name}: &{name} [*{previous}" + f",*{previous}" * 8 + "]")
    if where == "extra":
        return "models: [test_tiny]\nperturbations: [test_noise]\nextra:\n" + "\n".join(levels) + "\n"
    body = "\n".join("  " + line for line in levels)
    return f"models: [test_tiny]\nperturbations:\n  - name: test_noise\n    levels:\n{body}\n"


#: Parses a spec in a child process (so a regression cannot take the test run down with it) and prints how long
#: it took and the peak of Python allocations.
PARSE = """
import sys, time, tracemalloc
sys.path.insert(0, {root!r})
from robustviz.spec import EvaluationSpec, SpecError
text = sys.stdin.read()
tracemalloc.start()
started = time.perf_counter()
try:
    EvaluationSpec.from_yaml(text)
    outcome = "accepted"
except SpecError as error:
    outcome = "refused: " + str(error)
print(time.perf_counter() - started, tracemalloc.get_traced_memory()[1], outcome)
"""


@pytest.mark.parametrize("where", ["extra", "params"])
def test_a_yaml_alias_bomb_is_refused_fast_and_small(where):
    text = bomb(where)
    assert len(text.encode()) < 500
    root = str(Path(__file__).resolve().parents[2])
    try:
        done = subprocess.run([sys.executable, "-c", PARSE.format(root=root)], input=text, capture_output=True,
                              text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("parsing a 500-byte alias bomb ran for more than 20 s")
    elapsed, peak, outcome = done.stdout.split(" ", 2)
    assert outcome.startswith("refused:") and "aliases" in outcome, done.stdout + done.stderr
    assert float(elapsed) < 1.0 and int(peak) < 20e6, (elapsed, peak)
    # aliases used the ordinary way still work
    spec = rv.EvaluationSpec.from_yaml("models: [test_tiny]\nperturbations: &p [test_noise]\nextra: {again: *p}\n")
    assert dict(spec.extra)["again"] == ("test_noise",)


# -- point 10: the model's own errors and outputs ----------------------------------------------------------------
class Raises(torch.nn.Module):
    def __init__(self, message: str):
        super().__init__()
        self.message = message

    def forward(self, images):
        raise RuntimeError(self.message)


@pytest.mark.parametrize("message, expected", [
    ("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)", "ran out of memory"),
    ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to "
     "allocate 140737488355328 bytes. Error code 12 (Cannot allocate memory)", "ran out of memory"),
    ("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR", "raised RuntimeError: cuDNN error"),
])
def test_a_models_own_runtime_error_is_not_called_a_shape_mismatch(message, expected):
    with pytest.raises(rv.InputError) as caught:
        rv.evaluate(small(), models={"test_tiny": Raises(message)}, progress=False)
    text = str(caught.value)
    assert "model 'test_tiny'" in text and expected in text
    assert "failed on images of shape" not in text and "channels and image size" not in text
    assert "\n" not in text


class ReturnsTuple(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = _tiny_model()

    def forward(self, images):
        return self.inner(images), images.mean()


class ReturnsOutputObject(ReturnsTuple):
    """A HuggingFace-style output: an object with a ``.logits`` tensor."""

    class Output:
        def __init__(self, logits):
            self.logits = logits

    def __init__(self):
        super().__init__()
        self.cam_layer, self.class_names = self.inner.cam_layer, self.inner.class_names

    def forward(self, images):
        return self.Output(self.inner(images))


def test_a_tuple_output_is_a_clear_error_and_a_logits_attribute_is_used():
    with pytest.raises(rv.InputError, match=r"model 'test_tiny' returned a tuple of 2 items, not a logits tensor"):
        rv.evaluate(small(), models={"test_tiny": ReturnsTuple()}, progress=False)
    wrapped = rv.evaluate(small(), models={"test_tiny": ReturnsOutputObject()}, progress=False)
    assert_cubes_equal(wrapped, rv.evaluate(small(), progress=False), atol=0)


# -- point 10: one line from the CLI -----------------------------------------------------------------------------
def spec_file(tmp_path: Path, spec) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(spec.to_yaml())
    return str(path)


def test_a_typo_in_a_component_parameter_suggests_the_name(tmp_path, capsys):
    spec = small(methods=[{"name": "integrated_gradients", "n_stpes": 4}])
    code = main(["run", spec_file(tmp_path, spec), "--store", str(tmp_path / "c.zarr"), "--no-progress"])
    line = one_line(capsys.readouterr().err)
    assert code == 2
    assert "unknown parameter 'n_stpes' for method 'integrated_gradients'; did you mean 'n_steps'?" in line


def test_a_full_disk_says_free_space_then_resume(tmp_path, capsys, monkeypatch):
    spec = small()
    store = tmp_path / "c.zarr"
    original = CubeStore.write_region
    calls = []

    def write_region(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CubeStore, "write_region", write_region)
    code = main(["run", spec_file(tmp_path, spec), "--store", str(store), "--no-progress"])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and "no space left" in line and "free space" in line and "--resume" in line
    monkeypatch.setattr(CubeStore, "write_region", original)
    assert main(["run", spec_file(tmp_path, spec), "--store", str(store), "--no-progress", "--resume"]) == 0
    assert_cubes_equal(rv.open_cube(store).load(), rv.evaluate(spec, progress=False))


def test_a_damaged_chunk_names_the_variable_and_the_path(tmp_path, capsys):
    spec = small()
    store = tmp_path / "c.zarr"
    assert main(["run", spec_file(tmp_path, spec), "--store", str(store), "--no-progress"]) == 0
    capsys.readouterr()
    chunk = sorted(path for path in (store / "pred").rglob("*") if path.is_file() and path.name != "zarr.json")[0]
    chunk.write_bytes(chunk.read_bytes()[:5])
    code = main(["figures", str(store), "--out", str(tmp_path / "figures"), "--format", "svg"])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and "'pred'" in line and str(store / "pred") in line and "--resume" in line


def test_a_lost_dask_scheduler_is_one_line(tmp_path, capsys, monkeypatch):
    import importlib

    from distributed.comm.core import CommClosedError

    package = importlib.import_module("robustviz.evaluate")
    distributed = importlib.import_module("robustviz.evaluate.distributed")

    class Client:
        def close(self):
            pass

    def evaluate(*args, **kwargs):  # what client.gather raises when the scheduler process is killed
        raise CommClosedError("in <TCP (closed) ConnectionPool.gather local=tcp://127.0.0.1:50000 "
                              "remote=tcp://127.0.0.1:8786>: Stream is closed")

    monkeypatch.setattr(distributed, "make_client", lambda *a, **k: Client())
    monkeypatch.setattr(package, "evaluate", evaluate)
    code = main(["run", spec_file(tmp_path, small()), "--store", str(tmp_path / "c.zarr"), "--scheduler",
                 "tcp://127.0.0.1:8786", "--no-progress"])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and "lost the dask scheduler 'tcp://127.0.0.1:8786'" in line and "--resume" in line
