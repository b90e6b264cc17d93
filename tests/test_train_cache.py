"""The cache of finished training runs (ddpm_lib.train_cache): a loaded run is the run that
training gives, bit for bit, and any change to what a run depends on trains anew."""

from __future__ import annotations

import copy

import pytest
import torch

from ddpm_lib import train_cache
from ddpm_lib.data import sample_data
from ddpm_lib.losses import l_simple, l_vlb
from ddpm_lib.models import MLPDenoiser
from ddpm_lib.schedules import Schedule
from ddpm_lib.train import train

SCHED = Schedule.named("sigmoid", 20)
DATA = sample_data("moons", 1000, seed=0)
ARGS = dict(steps=12, batch_size=32, lr=2e-3, ema_decay=0.9, seed=3, progress=False)


def _model(seed=0):
    torch.manual_seed(seed)
    return MLPDenoiser(hidden=16, depth=2, embed_dim=8)


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(train_cache.ENV, str(tmp_path))
    return tmp_path


def test_a_loaded_run_is_the_trained_run(cache):
    """Second call with the same inputs: loaded (the stored wall time comes back exactly),
    and every weight, loss and snapshot equals an uncached training of the same run."""
    init = _model()
    first = train(copy.deepcopy(init), DATA, SCHED, snapshot_at=(4, 12), **ARGS)
    assert len(list(cache.glob("*.pt"))) == 1
    again = train(copy.deepcopy(init), DATA, SCHED, snapshot_at=(4,), **ARGS)
    fresh = train(
        copy.deepcopy(init), DATA, SCHED, snapshot_at=(4,), cache=False, **ARGS
    )
    assert again.seconds == first.seconds  # loaded, not re-timed
    assert fresh.seconds != first.seconds  # (a fresh run has its own time)
    assert torch.equal(again.losses, fresh.losses)
    assert _same_weights(again.model, fresh.model)
    assert _same_weights(again.raw_model, fresh.raw_model)
    assert [s for s, _, _ in again.snapshots] == [4]
    assert _same_weights(again.snapshots[0][2], fresh.snapshots[0][2])
    assert again.config == fresh.config and again.threads == fresh.threads
    # the loaded models are used like trained ones
    for m in (again.model, again.raw_model, again.snapshots[0][2]):
        assert m.schedule.same_as(SCHED) and not m.training
    assert again.model.train_config == fresh.model.train_config
    assert not any(p.requires_grad for p in again.model.parameters())
    assert all(p.requires_grad for p in again.raw_model.parameters())
    assert not _same_weights(again.model, init)  # it did train


def test_missing_snapshots_train_anew(cache, monkeypatch):
    monkeypatch.setattr(train_cache, "SNAPSHOT_EVERY", 4)
    init = _model()
    first = train(copy.deepcopy(init), DATA, SCHED, **ARGS)
    again = train(copy.deepcopy(init), DATA, SCHED, snapshot_at=(6,), **ARGS)
    assert again.seconds != first.seconds and [s for s, _, _ in again.snapshots] == [6]


def test_a_stored_run_keeps_regular_snapshots(cache, monkeypatch):
    """A run stored without snapshots still serves a later request for snapshots at
    multiples of SNAPSHOT_EVERY, and they are the trained run's."""
    monkeypatch.setattr(train_cache, "SNAPSHOT_EVERY", 4)
    init = _model()
    first = train(copy.deepcopy(init), DATA, SCHED, **ARGS)
    assert first.snapshots == []  # only what was asked for is returned
    again = train(copy.deepcopy(init), DATA, SCHED, snapshot_at=(8, 4), **ARGS)
    fresh = train(
        copy.deepcopy(init), DATA, SCHED, snapshot_at=(4, 8), cache=False, **ARGS
    )
    assert again.seconds == first.seconds  # loaded
    assert [s for s, _, _ in again.snapshots] == [4, 8]
    for (_, _, a), (_, _, b) in zip(again.snapshots, fresh.snapshots):
        assert _same_weights(a, b)
    assert not _same_weights(again.snapshots[0][2], again.snapshots[1][2])


CHANGES = {
    "data": lambda a: dict(a, data=a["data"] + torch.eye(1, 2) * 1e-6),
    "schedule": lambda a: dict(a, sched=Schedule.named("cosine", 20)),
    "weights": lambda a: dict(a, model=_model(seed=1)),
    "architecture": lambda a: dict(
        a, model=MLPDenoiser(hidden=16, depth=2, embed_dim=10)
    ),
    "dtype": lambda a: dict(a, model=_model().double()),
    "lr": lambda a: dict(a, settings=dict(a["settings"], lr=3e-3)),
    "seed": lambda a: dict(a, settings=dict(a["settings"], seed=4)),
    "steps": lambda a: dict(a, settings=dict(a["settings"], steps=13)),
    "batch": lambda a: dict(a, settings=dict(a["settings"], batch_size=33)),
    "ema": lambda a: dict(a, settings=dict(a["settings"], ema_decay=0.99)),
    "threads": lambda a: dict(a, settings=dict(a["settings"], threads=2)),
    "loss": lambda a: dict(a, loss_fn=l_vlb),
}


@pytest.mark.parametrize("what", CHANGES)
def test_every_input_is_in_the_key(what):
    base = dict(
        model=_model(),
        data=DATA,
        sched=SCHED,
        settings=dict(
            steps=12, batch_size=32, lr=2e-3, ema_decay=0.9, seed=3, threads=1
        ),
        loss_fn=l_simple,
    )
    changed = CHANGES[what](dict(base))
    assert train_cache.run_key(**base) == train_cache.run_key(**dict(base))
    assert train_cache.run_key(**changed) != train_cache.run_key(**base)


def test_the_library_code_is_in_the_key(monkeypatch):
    base = (_model(), DATA, SCHED, dict(steps=1), l_simple)
    before = train_cache.run_key(*base)
    monkeypatch.setattr(train_cache, "_code_digest", lambda: "edited")
    assert train_cache.run_key(*base) != before


def test_off_unless_asked(cache, monkeypatch):
    """No file without the environment variable, with cache=False, or with a loss function
    written outside ddpm_lib (its source may hide what it reads)."""
    train(_model(), DATA, SCHED, cache=False, **ARGS)
    train(_model(), DATA, SCHED, loss_fn=lambda *a, **k: l_simple(*a, **k), **ARGS)
    monkeypatch.delenv(train_cache.ENV)
    train(_model(), DATA, SCHED, **ARGS)
    assert list(cache.iterdir()) == []
    with pytest.raises(TypeError, match="cache must be True or False"):
        train(_model(), DATA, SCHED, cache="yes", **ARGS)


def test_a_file_of_another_kind_is_not_used(cache):
    init = _model()
    train(copy.deepcopy(init), DATA, SCHED, **ARGS)
    (path,) = cache.glob("*.pt")
    torch.save({"format": "something else"}, path)
    again = train(copy.deepcopy(init), DATA, SCHED, **ARGS)
    assert torch.load(path, weights_only=True)["format"] == train_cache._FORMAT
    assert again.losses.shape == (ARGS["steps"],)
