"""The checks of chapter 10's exercises (see :mod:`ddpm_lib.exercises`)."""

from __future__ import annotations

import torch

from ..schedules import Schedule
from . import alpha_bar, close, exercise, first_mistake, right, wrong


def _cases():
    """(ε_c, ε_∅, gradient, t, w) on random inputs in float64, with weights ½, 3, 0."""
    g = torch.Generator().manual_seed(1001)
    for n, d, w in ((7, 2, 0.5), (4, 3, 3.0), (5, 2, 0.0)):
        e_c = torch.randn(n, d, generator=g, dtype=torch.float64)
        e_u = torch.randn(n, d, generator=g, dtype=torch.float64)
        grad = torch.randn(n, d, generator=g, dtype=torch.float64)
        t = torch.randint(1, 101, (n,), generator=g)
        yield e_c, e_u, grad, t, w


def _shape(out, like) -> bool:
    return isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(like.shape)


@exercise("ex-ch10-cfg")
def check_cfg(cfg):
    for e_c, e_u, _, _, w in _cases():
        out = cfg(e_c, e_u, w)
        if not _shape(out, e_c):
            return wrong(
                f"return a tensor of the shape of eps_cond, {tuple(e_c.shape)}; got "
                f"{type(out).__name__} {tuple(getattr(out, 'shape', ()))}."
            )
        want = e_c + w * (e_c - e_u)  # the conditional one pushed away from the other
        if close(out, want, rtol=1e-9, atol=1e-12):
            continue
        hint = first_mistake(
            out,
            {
                "you used w as the scale s = 1 + w of some papers, where s = 1 is "
                "unguided; here w = 0 must give the conditional prediction.": e_u
                + w * (e_c - e_u),
                "the two predictions are swapped: guidance moves away from the "
                "unconditional prediction, towards the conditional one.": (1 + w) * e_u
                - w * e_c,
                "check the sign of the unconditional term: it is subtracted.": (1 + w)
                * e_c
                + w * e_u,
                "the weights of the two terms must add up to 1, so that w = 0 is plain "
                "conditional sampling.": w * e_c - w * e_u,
            },
            rtol=1e-9,
            atol=1e-12,
        )
        return wrong(
            hint
            or f"with w = {w:g} the answer differs from the guided prediction; "
            "write the guided score with Bayes' rule and turn it into noise predictions."
        )
    return right("the classifier-free guided prediction for every w tried.")


@exercise("ex-ch10-classifier")
def check_classifier(classifier_eps):
    sched = Schedule.named("sigmoid", 100)
    ab_all = alpha_bar(sched)
    for _, e_u, grad, t, w in _cases():
        out = classifier_eps(e_u, grad, sched, t, w)
        if not _shape(out, e_u):
            return wrong(
                f"return a tensor of the shape of eps, {tuple(e_u.shape)}; got "
                f"{type(out).__name__} {tuple(getattr(out, 'shape', ()))}."
            )
        ab = ab_all[t][:, None]
        noise = (1 - ab).sqrt()
        want = e_u - (1 + w) * noise * grad
        if close(out, want, rtol=1e-9, atol=1e-12):
            continue
        hint = first_mistake(
            out,
            {
                "the classifier's factor is w, but the unconditional prediction needs "
                "one more unit of it just to become conditional.": e_u
                - w * noise * grad,
                "check the sign: ε is minus the scaled score, so a gradient that raises "
                "p(c | x_t) is subtracted.": e_u + (1 + w) * noise * grad,
                "the score is turned into a noise prediction with √(1 − ᾱ_t), not "
                "√ᾱ_t.": e_u - (1 + w) * ab.sqrt() * grad,
                "the factor is √(1 − ᾱ_t), not 1 − ᾱ_t.": e_u
                - (1 + w) * (1 - ab) * grad,
                "the score needs the factor √(1 − ᾱ_t) to become a noise prediction.": (
                    e_u - (1 + w) * grad
                ),
                "use ᾱ_t (alpha_bar), not α_t.": e_u
                - (1 + w) * sched.betas[t].double()[:, None].sqrt() * grad,
            },
            rtol=1e-9,
            atol=1e-12,
        )
        return wrong(
            hint
            or f"with w = {w:g} the answer differs from classifier guidance with the "
            "same target as classifier-free guidance; start from Bayes' rule on the score."
        )
    return right("classifier guidance with the target of classifier-free guidance.")
