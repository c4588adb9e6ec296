"""What the evaluator checks about a model's calls and output, each failure as one line naming the model.

- A model's own ``RuntimeError`` is reported for what it is: an input-shape mismatch (channels, image size) names
  the shapes; running out of memory says so; anything else names the model and its message — never relabelled.
- The output must be a logits tensor. A HuggingFace-style output object with a ``.logits`` tensor is accepted (the
  evaluator then adds a forward hook to the model that returns ``.logits``, so methods and attacks see a tensor too);
  a tuple or anything else is an error: wrap the model so ``forward`` returns the logits.
- Every logit must be finite: a NaN would otherwise read as ``pred = 0`` (correct for every label-0 sample).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Iterator

import torch

from ..validation import InputError


class ModelError(InputError):
    """A model failed or returned something unusable; the message names the model and what to do."""


_OUT_OF_MEMORY = re.compile(r"out of memory|not enough memory|can't allocate memory|cannot allocate memory",
                            re.IGNORECASE)
_SHAPE = re.compile(r"shape|size|channel|dimension|mat1 and mat2|expected .*input", re.IGNORECASE)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def model_errors(name: str, images: torch.Tensor) -> Iterator[None]:
    """Turn a ``RuntimeError`` raised while calling model ``name`` on ``images`` into one clear :class:`ModelError`."""
    try:
        yield
    except RuntimeError as error:
        shape = tuple(images.shape[1:])
        if isinstance(error, torch.OutOfMemoryError) or _OUT_OF_MEMORY.search(str(error)):
            raise ModelError(f"model {name!r} ran out of memory on images of shape {shape} ({_first_line(error)}); "
                             f"free memory (other programs, a smaller image size or model, another device), then "
                             f"continue with --resume") from error
        if _SHAPE.search(str(error)):
            channels = shape[0] if shape else 0
            raise ModelError(f"model {name!r} failed on images of shape {shape} ({channels} channel"
                             f"{'s' if channels != 1 else ''}): {_first_line(error)}. Check that the dataset's "
                             f"channels and image size match what the model expects") from error
        raise ModelError(f"model {name!r} raised {type(error).__name__}: {_first_line(error)} (an error inside the "
                         f"model, not a robustviz one); fix the model, then continue with --resume") from error


def _unwrap_logits(module: torch.nn.Module, inputs: Any, output: Any) -> Any:
    logits = getattr(output, "logits", None)
    return logits if isinstance(logits, torch.Tensor) else output


def logits_of(model: torch.nn.Module, output: Any, name: str) -> torch.Tensor:
    """The logits tensor in a model's ``output`` (see the module docstring), or a :class:`ModelError`."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        if not getattr(model, "_robustviz_logits_hook", False):
            model.register_forward_hook(_unwrap_logits)
            model._robustviz_logits_hook = True  # type: ignore[assignment]
        return logits
    kind = f"a {type(output).__name__}" + (f" of {len(output)} items" if isinstance(output, (tuple, list)) else "")
    raise ModelError(f"model {name!r} returned {kind}, not a logits tensor of shape (N, classes); wrap it so that "
                     f"forward returns only the logits (e.g. lambda x: model(x)[0] inside an nn.Module)")


def check_finite_logits(logits: torch.Tensor, sample_ids: torch.Tensor, name: str, where: str) -> None:
    """A :class:`ModelError` naming the model and the sample ids whose logits hold NaN or ±inf."""
    finite = torch.isfinite(logits).reshape(logits.shape[0], -1).all(1)
    if bool(finite.all()):
        return
    bad = sorted({int(i) for i in torch.as_tensor(sample_ids).reshape(-1)[~finite.cpu()].tolist()})
    shown = ", ".join(map(str, bad[:10])) + (f", … ({len(bad)} in all)" if len(bad) > 10 else "")
    raise ModelError(f"model {name!r} returned non-finite logits (NaN or inf) on {where} for sample id(s) {shown}; "
                     f"check the model (weights, normalisation, numerical overflow) before evaluating it")


__all__ = ["ModelError", "check_finite_logits", "logits_of", "model_errors"]
