"""Content hashes of a robustviz zarr store, and the check that finds damaged regions.

A store keeps, beside its zarr arrays, a folder ``.robustviz/`` (zarr ignores it):

- ``store.json`` — the manifest written when the store is created: each array's ``zarr.json`` as created, a hash
  of each coordinate's values, and the region grid (sample chunk size). It also marks the directory as a robustviz
  store: ``--overwrite`` deletes nothing without it.
- ``regions/M-P-C.json`` — one record per written region (model × perturbation × sample chunk): a hash of the
  values of each of its variables, exactly as written (after casting to the array's dtype).
- ``model-level/M.json`` — the same for a model's model-level variables (e.g. I-ASIDE).

:func:`verify_store` re-reads every written region and compares: a deleted, truncated, swapped or garbled chunk,
an edited ``zarr.json`` (dtype, shape, fill value, codecs), a deleted variable or coordinate all show up, named.
It needs only zarr and numpy, so a cube can be checked without the model or the data that made it.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

SIDECAR = ".robustviz"
MANIFEST = "store.json"
#: The store's bookkeeping arrays: written as state, not as results, so not hashed.
STATE_ARRAYS = ("done", "model_done")

Region = tuple[int, int, int]


def content_hash(values: np.ndarray) -> str:
    """A 128-bit BLAKE2b hash of an array's dtype, shape and bytes (C order)."""
    values = np.ascontiguousarray(values)
    digest = hashlib.blake2b(digest_size=16)
    text = values.dtype.kind in "OUTS"
    digest.update(f"{'str' if text else values.dtype.str}{values.shape}".encode())
    if text:  # strings (coordinate labels): their text, not object pointers
        digest.update(json.dumps([str(v) for v in values.ravel()]).encode())
    else:
        digest.update(memoryview(values).cast("B"))
    return digest.hexdigest()


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically (a temporary file renamed into place): readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    temporary.write_text(json.dumps(payload, sort_keys=True))
    os.replace(temporary, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def region_record(store: Path, region: Region) -> Path:
    return store / SIDECAR / "regions" / f"{region[0]}-{region[1]}-{region[2]}.json"


def model_record(store: Path, model: int) -> Path:
    return store / SIDECAR / "model-level" / f"{model}.json"


def selection(dims: tuple[str, ...], model: int, perturbation: int | None, samples: slice | None) -> tuple:
    """Index of one region (or one model, ``perturbation=None``) in an array with ``dims``."""
    index: list[Any] = [model] + ([perturbation] if perturbation is not None else [])
    index += [slice(None)] * (len(dims) - len(index))
    if samples is not None and "sample" in dims:
        index[dims.index("sample")] = samples
    return tuple(index)


def region_kind(dims: tuple[str, ...]) -> str:
    """``"region"`` (per model × perturbation), ``"model"`` (per model) or ``""`` (neither)."""
    if dims[:2] == ("model", "perturbation"):
        return "region"
    return "model" if dims[:1] == ("model",) else ""


@dataclass
class Manifest:
    """What a store was created as: each array's zarr metadata, coordinate hashes, the region grid."""

    arrays: dict[str, dict[str, Any]]
    coords: dict[str, str]
    sample_chunk: int
    format: str

    @classmethod
    def read(cls, store: Path) -> "Manifest":
        data = read_json(store / SIDECAR / MANIFEST)
        return cls(data["arrays"], data["coords"], int(data["sample_chunk"]), data["format"])

    def dims(self, name: str) -> tuple[str, ...]:
        return tuple(self.arrays[name].get("dimension_names") or ())

    def variables(self, kind: str) -> list[str]:
        return [name for name in self.arrays if name not in self.coords and name not in STATE_ARRAYS
                and region_kind(self.dims(name)) == kind]

    @property
    def grid(self) -> tuple[int, int, int]:
        shape = self.arrays["done"]["shape"]
        return int(shape[0]), int(shape[1]), int(shape[2])

    def samples(self, chunk: int) -> slice:
        return slice(chunk * self.sample_chunk, (chunk + 1) * self.sample_chunk)


def write_manifest(store: Path, *, coords: Mapping[str, np.ndarray], sample_chunk: int, format: str) -> None:
    """Record every array's ``zarr.json`` and the coordinates' hashes (at creation, before any result)."""
    arrays = {entry.name: read_json(entry / "zarr.json") for entry in sorted(store.iterdir())
              if entry.is_dir() and (entry / "zarr.json").is_file()}
    hashes = {name: content_hash(np.asarray(values)) for name, values in coords.items()}
    write_json(store / SIDECAR / MANIFEST, {"format": format, "arrays": arrays, "sample_chunk": sample_chunk,
                                             "coords": hashes})


def is_marked(path: Path) -> bool:
    """True for a directory robustviz created as a store: its manifest exists, or its root metadata says so."""
    if not path.is_dir():
        return False
    if (path / SIDECAR / MANIFEST).is_file():
        return True
    try:
        attrs = read_json(path / "zarr.json").get("attributes", {})
    except (OSError, ValueError, AttributeError):
        return False
    return str(attrs.get("store_format", "")).startswith("robustviz-store")


@dataclass
class IntegrityReport:
    """What :func:`verify_store` found. ``ok`` is False when anything is damaged; pending regions are not damage."""

    path: Path
    problems: list[str] = field(default_factory=list)  # store-level: manifest, root metadata
    metadata: dict[str, str] = field(default_factory=dict)  # array → what is wrong with its zarr.json
    coords: list[str] = field(default_factory=list)  # coordinates whose values changed
    regions: dict[Region, str] = field(default_factory=dict)  # done regions whose content is damaged → why
    unflagged: list[Region] = field(default_factory=list)  # verified content whose done flag is not set
    models: dict[int, str] = field(default_factory=dict)  # model-level results damaged → why
    unflagged_models: list[int] = field(default_factory=list)  # verified model-level results without done flag
    verified: int = 0
    pending: int = 0

    @property
    def ok(self) -> bool:
        return not (self.problems or self.metadata or self.coords or self.regions or self.unflagged or self.models
                    or self.unflagged_models)

    def lines(self) -> list[str]:
        out = [f"store: {problem}" for problem in self.problems]
        out += [f"array {name!r}: {why}" for name, why in self.metadata.items()]
        out += [f"coordinate {name!r}: its values differ from those the store was created with" for name in self.coords]
        out += [f"region model={m} perturbation={p} chunk={c}: {why}"
                for (m, p, c), why in sorted(self.regions.items())]
        out += [f"region model={m} perturbation={p} chunk={c}: content verified but its done flag is not set"
                for m, p, c in self.unflagged]
        out += [f"model-level results of model {m}: {why}" for m, why in sorted(self.models.items())]
        out += [f"model-level results of model {m}: content verified but its done flag is not set"
                for m in self.unflagged_models]
        return out

    def summary(self) -> str:
        state = "ok" if self.ok else f"DAMAGED ({len(self.lines())} problems)"
        return f"{self.path}: {state}; {self.verified} written regions verified, {self.pending} pending"


@contextmanager
def quiet() -> Iterator[None]:
    """Silence zarr's notes about consolidated metadata and about robustviz's files beside the arrays."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr hierarchy.*")
        yield


def _describe_edit(current: Mapping[str, Any], expected: Mapping[str, Any]) -> str:
    keys = sorted(k for k in set(current) | set(expected) if current.get(k) != expected.get(k))
    parts = [f"{k} {json.dumps(expected.get(k))[:40]} → {json.dumps(current.get(k))[:40]}" for k in keys]
    return "its zarr.json was edited (" + "; ".join(parts) + ")"


def check_metadata(path: Path, manifest: Manifest) -> dict[str, str]:
    """Arrays whose ``zarr.json`` is missing, unreadable or differs from the one written at creation."""
    damaged = {}
    for name, expected in manifest.arrays.items():
        meta = path / name / "zarr.json"
        if not meta.is_file():
            damaged[name] = "missing (the array or its zarr.json was deleted)"
            continue
        try:
            current = read_json(meta)
        except (OSError, ValueError) as error:
            damaged[name] = f"its zarr.json cannot be read ({error})"
            continue
        if current != expected:
            damaged[name] = _describe_edit(current if isinstance(current, dict) else {}, expected)
    return damaged


def _read_record(path: Path) -> dict[str, str] | None:
    try:
        record = read_json(path)
        return record if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None


def _read_flags(array: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, set[tuple[int, ...]]]:
    """A done mask, and the cells whose chunk cannot be read (read one by one when the whole array fails)."""
    try:
        return np.asarray(array[...]) == 1, set()
    except Exception:  # noqa: BLE001 - any codec/shape error of a damaged chunk
        flags, unreadable = np.zeros(shape, dtype=bool), set()
        for cell in np.ndindex(*shape):
            try:
                flags[cell] = int(array[cell]) == 1
            except Exception:  # noqa: BLE001
                unreadable.add(cell)
        return flags, unreadable


def _hashes(group: Any, names: list[str], manifest: Manifest,
            keys: Mapping[int, list[tuple[int | None, int | None]]]) -> dict[tuple, dict[str, str]]:
    """``{(model, perturbation, chunk) or (model,): {variable: hash or 'unreadable: …'}}`` for the given keys
    (per model: a list of (perturbation, chunk), both None for model-level). Each variable is read one model slab
    at a time; a slab that fails is re-read region by region so that only the damaged regions are blamed."""
    out: dict[tuple, dict[str, str]] = {}
    for name in names:
        array, dims = group[name], manifest.dims(name)
        for model, cells in keys.items():
            try:
                slab = np.asarray(array[model])
            except Exception:  # noqa: BLE001
                slab = None
            for perturbation, chunk in cells:
                key = (model,) if perturbation is None else (model, perturbation, chunk)
                if chunk not in (None, 0) and "sample" not in dims:
                    continue  # examples belong to chunk 0
                samples = None if chunk is None else manifest.samples(chunk)
                index = selection(dims, model, perturbation, samples)
                try:
                    values = slab[index[1:]] if slab is not None else np.asarray(array[index])
                    out.setdefault(key, {})[name] = content_hash(values)
                except Exception as error:  # noqa: BLE001
                    out.setdefault(key, {})[name] = f"unreadable: {type(error).__name__}: {str(error)[:80]}"
    return out


def _compare(record: Mapping[str, str] | None, actual: Mapping[str, str], names: list[str]) -> str:
    """'' when the record matches, else why not."""
    if record is None:
        return "no content hash recorded (its record is missing or damaged)"
    unreadable = [f"{n} ({actual[n][12:]})" for n in names if actual.get(n, "").startswith("unreadable")]
    if unreadable:
        return "chunk cannot be read: " + ", ".join(unreadable)
    changed = [n for n in names if record.get(n) != actual.get(n)]
    return f"content of {', '.join(changed)} differs from what was written" if changed else ""


def verify_store(path: str | os.PathLike[str]) -> IntegrityReport:
    """Check a store against its manifest and content hashes; returns what is damaged (nothing is changed)."""
    import zarr

    path = Path(path)
    report = IntegrityReport(path)
    try:
        manifest = Manifest.read(path)
    except FileNotFoundError:
        report.problems.append("it has no integrity manifest (.robustviz/store.json): it is not a robustviz store, "
                               "or one written by robustviz before content hashes")
        return report
    except (OSError, ValueError, KeyError, TypeError) as error:
        report.problems.append(f"its integrity manifest .robustviz/store.json is damaged ({error})")
        return report
    try:
        root = read_json(path / "zarr.json")
        if root.get("node_type") != "group":
            raise ValueError("not a group")
    except (OSError, ValueError, AttributeError) as error:
        report.problems.append(f"its root zarr.json cannot be read ({error})")
        return report
    report.metadata = check_metadata(path, manifest)
    if report.metadata:
        return report  # values read through damaged metadata mean nothing; restore it first
    with quiet():
        group = zarr.open_group(path, mode="r")
        for name, expected in manifest.coords.items():
            try:
                if content_hash(np.asarray(group[name][...])) != expected:
                    report.coords.append(name)
            except Exception:  # noqa: BLE001
                report.coords.append(name)
        models, perturbations, chunks = manifest.grid
        done, unreadable = _read_flags(group["done"], manifest.grid)
        regions = [(m, p, c) for m in range(models) for p in range(perturbations) for c in range(chunks)]
        records = {r: _read_record(region_record(path, r)) for r in regions}
        check = [r for r in regions if r not in unreadable and (done[r] or records[r] is not None)]
        keys: dict[int, list] = {}
        for m, p, c in check:
            keys.setdefault(m, []).append((p, c))
        actual = _hashes(group, manifest.variables("region"), manifest, keys)
        sample_vars = [n for n in manifest.variables("region") if "sample" in manifest.dims(n)]
        all_vars = manifest.variables("region")
        for region in regions:
            if region in unreadable:
                report.regions[region] = "its done flag cannot be read"
                continue
            names = all_vars if region[2] == 0 else sample_vars
            if region not in check:
                report.pending += 1
            elif done[region]:
                why = _compare(records[region], actual.get(region, {}), names)
                if why:
                    report.regions[region] = why
                else:
                    report.verified += 1
            elif not _compare(records[region], actual.get(region, {}), names):
                report.unflagged.append(region)
            else:
                report.pending += 1
        model_vars = manifest.variables("model")
        if model_vars:
            model_done, bad = _read_flags(group["model_done"], (models,))
            records = {m: _read_record(model_record(path, m)) for m in range(models)}
            check = [m for m in range(models) if model_done[m] or (m,) in bad or records[m] is not None]
            actual = _hashes(group, model_vars, manifest, {m: [(None, None)] for m in check})
            for m in check:
                why = ("its done flag cannot be read" if (m,) in bad else
                       _compare(records[m], actual.get((m,), {}), model_vars))
                if why and model_done[m] or (m,) in bad:
                    report.models[m] = why
                elif not why and not model_done[m]:
                    report.unflagged_models.append(m)
    return report


__all__ = ["IntegrityReport", "Manifest", "content_hash", "is_marked", "verify_store", "write_manifest"]
