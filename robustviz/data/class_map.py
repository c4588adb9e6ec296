"""Class maps: label a dataset whose classes are a subset of the model's (an ImageNet-style folder of 4 wnids on a
1000-class model) with the model's class indices, so the model is evaluated with its full logits.

A ``class_map`` is any of:

- a mapping ``{folder name: model index}``;
- the model's class list in index order, as a list of strings (wnids such as ``n01440764``, or class names) — each
  folder is looked up in it; a ``LOC_synset_mapping.txt`` line (``"n01440764 tench, Tinca tinca"``) matches by its
  first word or by the rest;
- ``imagenet_class_index.json``'s form ``{"0": ["n01440764", "tench"], ...}``;
- a list of ints: the model index of each folder, in sorted folder order;
- a path to a ``.json`` file holding one of the above, or a text file with one class per line (the list form).

After mapping, labels *are* model class indices: the cube's ``pred`` and ``label`` are both in the model's index
space and ``correct`` compares them. ``metadata["label_space"] = "model"`` tells the evaluator so.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..validation import InputError
from .base import ImageSet


def _read(source: str | Path) -> Any:
    path = Path(source)
    if not path.is_file():
        raise InputError(f"class_map file {path} does not exist; give a mapping, a list or an existing file")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except ValueError as error:
            raise InputError(f"class_map file {path} is not valid JSON: {error}") from error
    return [line.strip() for line in text.splitlines() if line.strip()]


def _index_json(value: Mapping[Any, Any]) -> list[str] | None:
    """``{"0": ["n01440764", "tench"], ...}`` → the wnid list; None if ``value`` is not in that form."""
    if not value or not all(str(key).isdigit() and isinstance(entry, (list, tuple)) and entry
                            for key, entry in value.items()):
        return None
    count = max(int(key) for key in value) + 1
    names = [""] * count
    for key, entry in value.items():
        names[int(key)] = " ".join(str(part) for part in entry)  # "n01440764 tench": matches by either word
    return names


def _lookup(classes: Sequence[str], folder: str) -> int | None:
    for index, entry in enumerate(classes):
        first, _, rest = entry.partition(" ")
        if folder in (entry, first, rest.strip()) or folder in [part.strip() for part in rest.split(",")]:
            return index
    return None


def resolve_class_map(class_map: Any, folders: Sequence[str]) -> tuple[list[int], list[str] | None]:
    """The model index of each dataset class (``folders``, in label order) and, when the map lists them, the
    model's class names by index."""
    if isinstance(class_map, (str, Path)):
        class_map = _read(class_map)
    folders = [str(folder) for folder in folders]
    if isinstance(class_map, Mapping):
        listed = _index_json(class_map)
        if listed is None:
            unknown = [folder for folder in folders if folder not in class_map]
            if unknown:
                raise InputError(f"class_map has no entry for the dataset classes {unknown[:8]}; it maps "
                                 f"{sorted(map(str, class_map))[:8]}")
            indices = []
            for folder in folders:
                value = class_map[folder]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise InputError(f"class_map[{folder!r}] must be a model class index (an int ≥ 0), got {value!r}")
                indices.append(value)
            return indices, None
        class_map = listed
    if not isinstance(class_map, Sequence) or isinstance(class_map, (str, bytes)) or not class_map:
        raise InputError(f"class_map must be a {{folder: index}} mapping, the model's class list, or a file; got "
                         f"{class_map!r:.80}")
    if all(isinstance(value, int) and not isinstance(value, bool) for value in class_map):
        if len(class_map) != len(folders):
            raise InputError(f"class_map lists {len(class_map)} indices but the dataset has {len(folders)} classes "
                             f"({', '.join(folders[:8])}); give one model index per class, in sorted folder order")
        if min(class_map) < 0:
            raise InputError(f"class_map indices must be ≥ 0, got {min(class_map)}")
        return list(class_map), None
    classes = [str(value).strip() for value in class_map]
    indices, missing = [], []
    for folder in folders:
        index = _lookup(classes, folder)
        if index is None:
            missing.append(folder)
        indices.append(-1 if index is None else index)
    if missing:
        close = difflib.get_close_matches(missing[0], [c.partition(" ")[0] for c in classes], n=3)
        hint = f" (close: {', '.join(close)})" if close else ""
        raise InputError(f"the dataset classes {missing[:8]} are not in the class_map's {len(classes)} model "
                         f"classes{hint}; name the folders by the model's class ids (e.g. ImageNet wnids) or map "
                         f"them with {{folder: index}}")
    return indices, [c.partition(" ")[2].strip() or c for c in classes]


def apply_class_map(data: ImageSet, class_map: Any) -> ImageSet:
    """``data`` relabelled with the model's class indices (see the module docstring)."""
    if data.metadata.get("label_space") == "model":
        raise InputError("this dataset is already labelled with model class indices; apply one class_map only")
    indices, model_classes = resolve_class_map(class_map, data.class_names)
    if len(set(indices)) != len(indices):
        doubled = sorted({i for i in indices if indices.count(i) > 1})
        raise InputError(f"class_map sends two dataset classes to the same model index {doubled[:5]}")
    if model_classes is None:
        model_classes = [str(index) for index in range(max(indices) + 1)]
    else:
        model_classes = list(model_classes)
    for folder, index in zip(data.class_names, indices):
        model_classes[index] = model_classes[index] if model_classes[index] not in ("", str(index)) else folder
    lookup = torch.tensor(indices, dtype=torch.int64)
    metadata = {**data.metadata, "label_space": "model", "dataset_classes": list(data.class_names),
                "class_map": dict(zip(data.class_names, indices))}
    return ImageSet(data.images, lookup[data.labels], model_classes, data.masks, data.sample_ids, data.name,
                    metadata)


__all__ = ["apply_class_map", "resolve_class_map"]
