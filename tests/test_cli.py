import subprocess
import sys

import pytest

import robustviz as rv
from robustviz.cli import main

SPEC = """
models: [{name: test_tiny}]
dataset: {name: shapes, image_size: 32}
n_samples: 6
perturbations: [test_noise]
severities: [1, 2]
batch_size: 4
device: cpu
n_examples: 1
"""


@pytest.fixture(autouse=True)
def _test_components():
    import tests.evaluate.helpers  # noqa: F401  (registers test_tiny / test_noise)


def test_info_lists_registered_names(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "robustviz" in out and "torch" in out and "device (auto)" in out
    for kind in ("models", "datasets", "perturbations", "methods", "metrics"):
        assert f"{kind} (" in out


def test_run_writes_a_cube_and_resumes(tmp_path, capsys):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC)
    store = tmp_path / "out.zarr"
    assert main(["run", str(spec_path), "--store", str(store), "--no-progress", "--netcdf",
                 str(tmp_path / "out.nc")]) == 0
    assert "Top-1 accuracy" in capsys.readouterr().out
    ds = rv.open_cube(store)
    assert ds.rv.is_complete() and (tmp_path / "out.nc").exists()
    # a second run without --resume refuses, with --resume it has nothing to do
    assert main(["run", str(spec_path), "--store", str(store), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["run", str(spec_path), "--store", str(store), "--no-progress", "--resume"]) == 0
    assert len(rv.CubeStore(store).write_log()) == 1


def test_run_reports_bad_specs_clearly(tmp_path, capsys):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC.replace("test_noise", "test_nois"))
    assert main(["run", str(spec_path), "--store", str(tmp_path / "x.zarr")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown perturbation 'test_nois'") and "Did you mean 'test_noise'" in err
    spec_path.write_text(SPEC + "sevrities: [1]\n")
    assert main(["run", str(spec_path)]) == 2
    assert "did you mean 'severities'" in capsys.readouterr().err


def test_entry_point_is_installed():
    result = subprocess.run([sys.executable, "-m", "robustviz.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "demo" in result.stdout and "train-zoo" in result.stdout


def test_demo_spec_covers_the_suites():
    from robustviz.cli import IMAGENET_C, IMAGENET_C_EXTRA, demo_spec

    spec = demo_spec()
    assert [c.name for c in spec.perturbations] == list(IMAGENET_C + IMAGENET_C_EXTRA)
    assert {"saliency", "integrated_gradients", "grad_cam", "gradcam_plus_plus", "rise"} <= {
        c.name for c in spec.methods}
    assert {"consistency", "responsiveness", "deletion_auc", "fisher_lmax", "iaside"} <= {
        c.name for c in spec.metrics}
    assert len(spec.models) == 6
