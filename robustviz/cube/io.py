"""Reading and writing cubes: zarr (the working format, lazily read) and netCDF (for sharing)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import xarray as xr

from .integrity import verify_store
from .schema import CubeError

#: Bookkeeping variables of a store that a shared cube does not need.
STORE_ONLY = ("done", "model_done")


def open_cube(path: str | os.PathLike[str], *, validate: bool = True, verify: bool = False) -> xr.Dataset:
    """Open a cube from a zarr directory (lazily) or a netCDF file.

    ``verify=True`` first checks a robustviz store's content hashes (:func:`~robustviz.cube.integrity.verify_store`:
    it reads every written region once) and raises :class:`CubeError` listing the damaged regions; regions not
    written yet are not damage (they read as NaN / -1).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no cube at {path}; run `robustviz demo` or `robustviz run SPEC.yaml` first")
    if verify and path.is_dir():
        report = verify_store(path)
        if not report.ok:
            lines = report.lines()
            raise CubeError(f"the store {path} is damaged ({len(lines)} problems; `robustviz run SPEC --resume "
                            f"--store {path}` recomputes damaged regions):\n- " + "\n- ".join(lines[:20]))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr hierarchy.*")
        try:
            if path.is_dir():
                ds = xr.open_zarr(path, consolidated=False)
            else:
                ds = xr.open_dataset(path, engine="h5netcdf")
        except Exception as error:
            raise CubeError(f"cannot read a cube from {path}: {error}") from error
    if validate:
        ds.rv.validate()
    return ds


def to_netcdf(ds: xr.Dataset, path: str | os.PathLike[str]) -> Path:
    """Write ``ds`` (without store bookkeeping) as netCDF4 via h5netcdf; strings are stored variable-length."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = ds.drop_vars([name for name in STORE_ONLY if name in ds], errors="ignore")
    if "chunk" in out.dims and not any("chunk" in v.dims for v in out.data_vars.values()):
        out = out.drop_dims("chunk")
    out = out.load()
    for name, var in out.variables.items():
        var.encoding.clear()
        if var.dtype == object:
            out[name] = var.astype(str)
    out.to_netcdf(path, engine="h5netcdf")
    return path


def to_zarr(ds: xr.Dataset, path: str | os.PathLike[str]) -> Path:
    """Write ``ds`` to a new zarr directory."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        ds.to_zarr(path, mode="w", consolidated=False)
    return path


__all__ = ["open_cube", "to_netcdf", "to_zarr"]
