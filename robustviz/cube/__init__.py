"""The results cube: schema, the ``ds.rv`` accessor, zarr/netCDF I/O. Depends on xarray only."""

from . import accessor  # noqa: F401  (registers ds.rv)
from .io import open_cube, to_netcdf, to_zarr
from .merge import CubeConflictError, diff_cubes, merge_cubes
from .schema import CubeError, validate

__all__ = ["CubeConflictError", "CubeError", "diff_cubes", "merge_cubes", "open_cube", "to_netcdf", "to_zarr",
           "validate"]
