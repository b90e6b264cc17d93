"""A cache of finished training runs: a run repeated with exactly the same inputs is loaded, not redone.

Several chapters train the same network on the same data with the same settings
(chapters 6 and 7 and ``tools/benchmark.py`` share :func:`ddpm_lib.benchmark.train_on`), and
the test run executes every chapter before the book build executes them again. Training
is deterministic given its inputs (seeded batches and noise, a fixed thread count), so a
run's result is a function of:

- the data (every byte), the schedule's β_t, the model's class, architecture, initial
  weights, dtype and device;
- the settings of :func:`ddpm_lib.train.train` (steps, batch, learning rate, EMA decay,
  seed, threads) and the loss function;
- the code that runs: every source file at the top of ``ddpm_lib`` (the package
  :mod:`ddpm_lib.exercises` is not part of training), and the torch version.

The cache key is the SHA-256 of all of these, so a change to any of them (a library
edit included) trains anew. It is **off** unless the environment variable
``DDPM_TRAIN_CACHE`` names a folder; ``make book`` and ``make test`` set it to
``_build/train-cache``. A reader running a chapter on its own trains every network.

Only runs whose loss function is a function of ``ddpm_lib`` are cached: a function
written in a notebook may read variables that its source code does not show.
A stored run holds the raw and EMA weights, the losses, the snapshots, and the wall time
of the run that trained it (``seconds`` is that run's, not the time to load it). The
snapshot steps are not part of the key (they do not change the weights): a stored run
keeps the EMA weights every ``SNAPSHOT_EVERY`` steps besides those asked for, and serves
any request for a subset of its snapshots; asking for others trains anew.
"""

from __future__ import annotations

import copy
import hashlib
import os
from functools import lru_cache
from pathlib import Path

import torch

#: The environment variable that names the cache folder (unset: no cache).
ENV = "DDPM_TRAIN_CACHE"
#: A stored run keeps the EMA weights after every multiple of this many steps.
SNAPSHOT_EVERY = 500
_FORMAT = "ddpm_lib.train_cache/1"


def cache_dir() -> Path | None:
    """The folder named by ``DDPM_TRAIN_CACHE``, or None when the cache is off."""
    where = os.environ.get(ENV, "").strip()
    return Path(where) if where else None


def cacheable(model, data, loss_fn) -> bool:
    """Whether a run can be cached: a ``ddpm_lib`` loss function and real (not meta) tensors."""
    module = getattr(loss_fn, "__module__", "") or ""
    if not module.startswith("ddpm_lib.") or not hasattr(loss_fn, "__qualname__"):
        return False
    tensors = [data, *model.parameters(), *model.buffers()]
    return all(t.device.type != "meta" for t in tensors)


def regular_steps(steps: int) -> set[int]:
    """The steps SNAPSHOT_EVERY, 2·SNAPSHOT_EVERY, … ≤ ``steps`` at which a stored run keeps the EMA weights."""
    return set(range(SNAPSHOT_EVERY, steps + 1, SNAPSHOT_EVERY))


def _tensor_bytes(t: torch.Tensor) -> bytes:
    flat = t.detach().cpu().contiguous().reshape(-1)
    head = f"{t.dtype}|{tuple(t.shape)}|{t.device.type}|".encode()
    return head + flat.view(torch.uint8).numpy().tobytes()


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """SHA-256 of every source file at the top of ddpm_lib (sorted by name) and the torch version."""
    h = hashlib.sha256(torch.__version__.encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def run_key(model, data, sched, settings: dict, loss_fn) -> str:
    """The SHA-256 (hex) of everything a training run's result depends on (see the module docstring)."""
    h = hashlib.sha256(_FORMAT.encode())
    h.update(_code_digest().encode())
    h.update(_tensor_bytes(data))
    h.update(f"{sched.name}|{sched.T}".encode() + _tensor_bytes(sched.betas))
    h.update(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    h.update(repr(sorted(getattr(model, "kwargs", {}).items())).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode() + _tensor_bytes(t))
    h.update(repr(sorted(settings.items())).encode())
    h.update(f"{loss_fn.__module__}.{loss_fn.__qualname__}".encode())
    return h.hexdigest()


def _state(module: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def store(key: str, result) -> None:
    """Write a :class:`~ddpm_lib.train.TrainResult` under ``key`` (atomically: two processes
    training the same run at once both write whole files)."""
    folder = cache_dir()
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": _FORMAT,
        "raw": _state(result.raw_model),
        "ema": _state(result.model),
        "losses": result.losses.detach().cpu().clone(),
        "seconds": float(result.seconds),
        "threads": int(result.threads),
        "config": result.config,
        "snapshots": [(s, float(sec), _state(m)) for s, sec, m in result.snapshots],
    }
    tmp = folder / f".{key}.{os.getpid()}.tmp"
    torch.save(blob, tmp)
    os.replace(tmp, folder / f"{key}.pt")


def load(key: str, model: torch.nn.Module, sched, snapshot_at=()):
    """The stored run ``key`` as the pieces :func:`ddpm_lib.train.train` returns, or None
    if there is none or it lacks a snapshot asked for in ``snapshot_at``.

    ``model`` is the (untrained) model passed to ``train``: copies of it receive the
    stored weights, so the loaded models are on its device and in its dtype.
    Returns (raw model, EMA model, losses, seconds, threads, config, snapshots).
    """
    folder = cache_dir()
    path = None if folder is None else folder / f"{key}.pt"
    if path is None or not path.is_file():
        return None
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
        return None
    if not set(snapshot_at) <= {step for step, _, _ in blob["snapshots"]}:
        return None
    raw = copy.deepcopy(model)
    raw.schedule = sched
    raw.load_state_dict(blob["raw"])
    ema = copy.deepcopy(raw).requires_grad_(False)
    ema.load_state_dict(blob["ema"])
    snapshots = []
    for step, seconds, state in blob["snapshots"]:
        if step not in snapshot_at:
            continue
        snap = copy.deepcopy(ema).eval()
        snap.load_state_dict(state)
        snapshots.append((step, seconds, snap))
    return (
        raw,
        ema,
        blob["losses"],
        blob["seconds"],
        blob["threads"],
        blob["config"],
        snapshots,
    )
