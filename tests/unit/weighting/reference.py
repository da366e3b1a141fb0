"""Independent numpy/scipy references for the gradient-combination weightings of issue 26.

Each function transcribes one method's combination step from its reference code, read line by
line (repository, path and commit in the docstring), so the TensorFlow implementations can be
tested against something written without them. No torch, tensorflow or cvxpy here.

Conventions, shared by every function:

- ``grads``: float64 array (T, P), one row per loss term, row 0 the primary task, T >= 2.
- Randomness is an explicit argument (PCGrad's orders, RLW's normal draws).
- Return ``(d, weights)``: the combined update direction (P,) and per-term weights (T,) with
  ``d == weights @ grads`` (up to rounding) unless the docstring says otherwise; some functions
  return a third item (solver state or dual weights), named in their docstring.
- Eps constants are the reference's, unchanged; the references run in float32 (torch default),
  these in float64.

Commits read:

- LibMTL  median-research-group/LibMTL @ 4336804847eaa5e0b924b743d76beec7ac3fdc97
- PCGrad  tianheyu927/PCGrad @ c5fbd7c856526373828074f06875230f7f3ee79e (PCGrad_tf.py)
- CAGrad  Cranial-XIX/CAGrad @ dc3d48152b6196945cfd56144879b9d42353b095
- NashMTL AvivNavon/nash-mtl @ cce18403ef5557a6b30f4ba43b896117107d6902
- AuxiLearn AvivNavon/AuxiLearn @ 17495d6c064718606ccf3a97d9c244eea084633f
- OL-AUX  Xingyu-Lin/auxiliary-tasks-rl @ 0146d2e9f10eb64097ccd3f317797c90ce7f9a21
- Aligned SamsungLabs/MTL @ 3f577f1365101fdd16094313b4a3b0d3845ce10d
- TorchJD TorchJD/torchjd @ 46962c2be7788503c151007fa013f761a6238ef2
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linprog, minimize, nnls

__all__ = [
    "aligned_mtl",
    "cagrad",
    "cagrad_primal",
    "dwa_weights",
    "gradcosine",
    "gradcosine_weighted",
    "imtl_g",
    "mgda",
    "min_norm_point",
    "nash_mtl",
    "nash_residual",
    "olaux_step",
    "pcgrad",
    "primary_projection",
    "rlw_weights",
    "upgrad",
]

# torch.finfo() with no argument is the default dtype's (float32), whatever the matrix's dtype.
_TORCH_DEFAULT_EPS = float(np.finfo(np.float32).eps)


def _as_grads(grads) -> np.ndarray:
    g = np.array(grads, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] < 2:
        raise ValueError(f"grads must be (T, P) with T >= 2, got shape {g.shape}")
    return g


# --------------------------------------------------------------------------------------------
# 1. PCGrad
# --------------------------------------------------------------------------------------------


def pcgrad(grads, orders: Sequence[Sequence[int]], include_self: bool = True):
    """PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning"), LibMTL's update.

    Transcribes LibMTL/weighting/PCGrad.py (LibMTL @ 4336804). For each row i, in the order
    ``orders[i]`` (LibMTL draws it with ``random.shuffle(list(range(T)))``, one fresh order per
    row, here an argument), against the ORIGINAL rows g_j:
    ``if pc_i . g_j < 0: pc_i -= (pc_i . g_j) / (||g_j||^2 + 1e-8) * g_j``; d = sum_i pc_i (sum,
    not mean). The weights are LibMTL's ``batch_weight``: start at 1, ``w_j -= (pc_i . g_j) /
    (||g_j||^2 + 1e-8)`` at every projection, so d == weights @ grads exactly.

    The loop includes j == i (``include_self=True``, as LibMTL and the original TF code); it
    only acts when pc_i has turned against its own g_i, which needs T >= 3. Other references:
    the original tianheyu927/PCGrad PCGrad_tf.py also includes k == i and sums, but has no eps
    and no effective shuffle (its ``tf.random.shuffle(loss)`` result is discarded, so the order
    is 0..T-1); TorchJD's PCGradWeighting and Cranial-XIX/CAGrad's pcgrad skip j == i
    (``include_self=False`` here), CAGrad's divides by (||g_j|| + 1e-8) and takes the mean.
    """
    g = _as_grads(grads)
    t = g.shape[0]
    if len(orders) != t:
        raise ValueError(f"need one order per row ({t}), got {len(orders)}")
    pc = g.copy()
    weights = np.ones(t)
    for i in range(t):
        order = [int(j) for j in orders[i]]
        if sorted(order) != list(range(t)):
            raise ValueError(f"orders[{i}] must be a permutation of range({t}), got {order}")
        for j in order:
            if j == i and not include_self:
                continue
            g_ij = pc[i] @ g[j]
            if g_ij < 0:
                coef = g_ij / (g[j] @ g[j] + 1e-8)
                pc[i] -= coef * g[j]
                weights[j] -= coef
    return pc.sum(axis=0), weights


# --------------------------------------------------------------------------------------------
# 2. Primary-protecting projection
# --------------------------------------------------------------------------------------------


def primary_projection(grads):
    """PCGrad restricted to the primary: written from the definition (no reference code exists).

    Row 0 never changes. Each aux row i >= 1 with g_i . g_0 < 0 (strict) is projected onto the
    normal plane of g_0: ``g_i -= (g_i . g_0) / (||g_0||^2 + 1e-8) * g_0`` (the eps is LibMTL
    PCGrad's, kept for consistency; a choice, not a transcription). Aux rows are not projected
    against each other. d = g_0 + sum_i g_i' (sum, like PCGrad), so weights are 1 for every aux
    row and 1 - sum of the projection coefficients for row 0; d == weights @ grads.
    """
    g = _as_grads(grads)
    g0 = g[0]
    denom = g0 @ g0 + 1e-8
    weights = np.ones(g.shape[0])
    for i in range(1, g.shape[0]):
        dot = g[i] @ g0
        if dot < 0:
            weights[0] -= dot / denom
    return weights @ g, weights


# --------------------------------------------------------------------------------------------
# 3. GradCosine
# --------------------------------------------------------------------------------------------


def _torch_cosine(a: np.ndarray, b: np.ndarray, eps: float = 1e-8) -> float:
    """torch.nn.CosineSimilarity(dim=0) (eps 1e-8, current torch: each norm clamped to eps),
    then AuxiLearn's clamp to [-1, 1]. A zero vector gives cosine 0."""
    na = max(float(np.linalg.norm(a)), eps)
    nb = max(float(np.linalg.norm(b)), eps)
    return float(np.clip((a @ b) / (na * nb), -1.0, 1.0))


def _cosines_to_primary(g: np.ndarray) -> np.ndarray:
    return np.array([_torch_cosine(g[0], g[i]) for i in range(1, g.shape[0])])


def gradcosine(grads):
    """GradCosine, unweighted (Du et al. 2018, "Adapting Auxiliary Losses Using Gradient
    Similarity"), as AuxiLearn's baseline implements it.

    Transcribes AvivNavon/AuxiLearn experiments/weight_methods.py, class GradCosine
    (@ 17495d6): start from the primary's gradient and add each aux gradient (weight 1) iff
    ``cosine > 0`` (strict: an orthogonal or zero aux gradient is NOT used), cosine as in
    ``_torch_cosine``. Aux rows are judged independently against g_0 only. d == weights @ grads
    with weights[0] = 1, weights[i] in {0, 1}. The paper's text was not retrievable here, so
    ">" rather than ">=" is AuxiLearn's choice, the only one seen in code.
    """
    g = _as_grads(grads)
    cos = _cosines_to_primary(g)
    weights = np.concatenate([[1.0], (cos > 0).astype(np.float64)])
    return weights @ g, weights


def gradcosine_weighted(grads):
    """GradCosine, weighted version (Du et al. 2018): aux weight max(0, cos(g_0, g_i)).

    No reference code implements this variant (AuxiLearn has only the unweighted one); written
    from the paper's rule d = g_main + max(0, cos) g_aux, per aux row, with the same cosine
    (torch eps 1e-8, clamped to [-1, 1]). weights[0] = 1; d == weights @ grads.
    """
    g = _as_grads(grads)
    cos = _cosines_to_primary(g)
    weights = np.concatenate([[1.0], np.maximum(0.0, cos)])
    return weights @ g, weights


# --------------------------------------------------------------------------------------------
# 4. OL-AUX
# --------------------------------------------------------------------------------------------


def olaux_step(
    grads,
    aux_weights,
    dot_buffer: Sequence[np.ndarray] = (),
    lr: float = 1.0,
    beta: float = 5.0,
    horizon: int = 5,
    clip_at_zero: bool = True,
    main_grad=None,
):
    """One step of OL-AUX (Lin et al. 2019, "Adaptive Auxiliary Task Weighting for
    Reinforcement Learning"), as the authors' code does it.

    Transcribes Xingyu-Lin/auxiliary-tasks-rl olaux/ddpg.py ``_update_aux_weights`` and
    baselines/common/mpi_aux_update.py ``MpiAuxUpdate.update`` (@ 0146d2e):

    1. d = g_0 + sum_i w_i g_i with the CURRENT aux weights (the weights change only after the
       step: the authors' ``train`` applies the update, then ``_update_aux_weights``).
    2. Each step appends ``lr * (g_i . g_main)`` per aux task (lr = the model's learning rate,
       their ``Q_lr``) to a buffer. When the buffer holds ``horizon`` (N, their
       ``aux_update_interval``, default 5) entries:
       ``w <- clip(w + (beta * N) * mean(buffer), 0, None)`` = w + beta * lr * sum over the
       N steps of the dot products (their ``aux_weights_lr = aux_base_lr * N``, beta =
       ``aux_base_lr``, default 5), then the buffer empties. Weights are clipped at 0 from
       below (``clip_at_zero``), never above. Initial weights in their code: ones.

    This is the paper's w <- w - beta grad_w L_main with grad_w ~ -lr sum_j g_main . g_aux.

    Returns ``(d, weights, new_aux_weights, new_buffer)``; weights = [1, *aux_weights] with the
    weights used for d (d == weights @ grads); new_buffer is the list to pass next step.

    Deviations / choices: ``main_grad`` defaults to g_0 (the paper's gradient of L_main); the
    authors' code instead dots with the gradient of their *total* loss (L_main plus the
    weighted aux losses: ``main_task_Q_cnn_grad_tf`` is taken of ``Q_loss_tf`` after the aux
    terms were added), pass ``main_grad=weights @ grads`` to reproduce that. Not transcribed:
    their optional gradient smoothing (``aux_filter_interval=4``, a moving average of the last
    4 steps' gradients before the dot product), their log-loss transform (``log_loss=1``:
    log(L) and log(L_aux + 0.02)), and MPI averaging of gradients across workers.
    """
    g = _as_grads(grads)
    w = np.asarray(aux_weights, dtype=np.float64).copy()
    if w.shape != (g.shape[0] - 1,):
        raise ValueError(f"aux_weights must have shape ({g.shape[0] - 1},), got {w.shape}")
    weights = np.concatenate([[1.0], w])
    d = weights @ g
    gm = g[0] if main_grad is None else np.asarray(main_grad, dtype=np.float64)
    buffer = [np.asarray(b, dtype=np.float64) for b in dot_buffer]
    buffer.append(lr * (g[1:] @ gm))
    if len(buffer) == horizon:
        w = w + (beta * horizon) * np.mean(np.array(buffer), axis=0)
        if clip_at_zero:
            w = np.clip(w, 0.0, None)
        buffer = []
    return d, weights, w, buffer


# --------------------------------------------------------------------------------------------
# 5. CAGrad
# --------------------------------------------------------------------------------------------


def cagrad(grads, calpha: float = 0.5, rescale: int = 1, ftol: float | None = None):
    """CAGrad (Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning").

    Transcribes LibMTL/weighting/CAGrad.py (LibMTL @ 4336804), itself from Cranial-XIX/CAGrad
    nyuv2/utils.py ``cagrad`` (@ dc3d481; same code, 3 tasks hard-coded):
    GG = G G^T; g0_norm = sqrt(mean(GG) + 1e-8) (= ||mean gradient||); c = calpha * g0_norm +
    1e-8; w = argmin over the simplex of ``w.GG.b + c * sqrt(w.GG.w + 1e-8)`` with b = 1/T,
    solved by ``scipy.optimize.minimize(objfn, 1/T, bounds=(0,1)^T, constraints=sum(w)=1)``
    (SLSQP, scipy's defaults: ftol 1e-6, maxiter 100, finite-difference jacobian);
    gw = w @ G; lmbda = c / (||gw|| + 1e-8); g = mean(G) + lmbda * gw; then rescale 0: g,
    1: g / (1 + calpha^2) (LibMTL's default), 2: g / (1 + calpha). calpha default 0.5.

    Returns ``(d, weights, w)``: weights = (1/T + lmbda * w) / scale so d == weights @ grads
    (they sum to (1 + lmbda) / scale); w the dual simplex weights LibMTL returns.

    ``ftol`` (not in the reference) tightens SLSQP for comparisons with the primal; None keeps
    scipy's default, as the reference. Note: Cranial-XIX's and nash-mtl's training code
    multiply the result by T afterwards ("to match the sum loss", ``overwrite_grad``); LibMTL
    does not, nor does this function.
    """
    g = _as_grads(grads)
    t = g.shape[0]
    gg = g @ g.T
    g0_norm = np.sqrt(gg.mean() + 1e-8)
    x_start = np.ones(t) / t
    bnds = tuple((0, 1) for _ in x_start)
    cons = {"type": "eq", "fun": lambda x: 1 - sum(x)}
    a = gg
    b = x_start.copy()
    c = calpha * g0_norm + 1e-8

    def objfn(x):
        return (
            x.reshape(1, -1).dot(a).dot(b.reshape(-1, 1))
            + c * np.sqrt(x.reshape(1, -1).dot(a).dot(x.reshape(-1, 1)) + 1e-8)
        ).sum()

    options = None if ftol is None else {"ftol": ftol, "maxiter": 1000}
    res = minimize(objfn, x_start, bounds=bnds, constraints=cons, options=options)
    w = res.x
    gw = w @ g
    lmbda = c / (np.linalg.norm(gw) + 1e-8)
    if rescale == 0:
        scale = 1.0
    elif rescale == 1:
        scale = 1 + calpha**2
    elif rescale == 2:
        scale = 1 + calpha
    else:
        raise ValueError(f"No support rescale type {rescale}")
    weights = (1.0 / t + lmbda * w) / scale
    d = (g.mean(axis=0) + lmbda * gw) / scale
    return d, weights, w


def cagrad_primal(grads, c: float = 0.5):
    """CAGrad's primal problem, solved independently of the dual: a check for ``cagrad``.

    max_d min_i <g_i, d>  s.t.  ||d - g0|| <= c ||g0||, g0 = mean gradient (Liu et al. 2021,
    eq. 2), as SLSQP in (d, t): maximise t s.t. g_i . d >= t and ||d - g0||^2 <= c^2 ||g0||^2.
    Exact radius (no 1e-8 terms), gradients scaled by their largest row norm for the solve.
    Returns d (P,), comparable with ``cagrad(grads, c, rescale=0)[0]``; meant for small P.
    """
    g = _as_grads(grads)
    s = float(np.max(np.linalg.norm(g, axis=1)))
    if s == 0:
        return np.zeros(g.shape[1])
    gs = g / s
    p = gs.shape[1]
    g0 = gs.mean(axis=0)
    r2 = (c * np.linalg.norm(g0)) ** 2
    x0 = np.concatenate([g0, [np.min(gs @ g0)]])
    cons = [
        {
            "type": "ineq",
            "fun": lambda x: gs @ x[:p] - x[p],
            "jac": lambda x: np.hstack([gs, -np.ones((gs.shape[0], 1))]),
        },
        {
            "type": "ineq",
            "fun": lambda x: np.array([r2 - np.sum((x[:p] - g0) ** 2)]),
            "jac": lambda x: np.concatenate([-2 * (x[:p] - g0), [0.0]])[None, :],
        },
    ]
    res = minimize(
        lambda x: -x[p],
        x0,
        jac=lambda x: np.concatenate([np.zeros(p), [-1.0]]),
        constraints=cons,
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    return res.x[:p] * s


# --------------------------------------------------------------------------------------------
# 6. IMTL-G
# --------------------------------------------------------------------------------------------


def imtl_g(grads, generalized: bool = False):
    """IMTL-G (Liu et al. 2021, "Towards Impartial Multi-task Learning"), gradient part only.

    Transcribes LibMTL/weighting/IMTL.py (LibMTL @ 4336804) without its loss-scale part
    (``exp(s) * L - s``, which only rescales the gradients given here):
    u_i = g_i / ||g_i|| (no eps: a zero row gives nan, as in LibMTL); D = g_0 - g_{1:}, U = u_0 -
    u_{1:} (rows); alpha = g_0 U^T (D U^T)^{-1}; weights = [1 - sum(alpha), alpha] (sum to 1);
    d = weights @ grads, whose projections d . u_i are equal for all i. ``np.linalg.inv``
    raises on an exactly singular D U^T (two parallel gradients), as ``torch.inverse`` does.
    (nash-mtl's IMTLG retries with D U^T + 1e-8 I on that error; LibMTL does not.)

    ``generalized=True`` is TorchJD's IMTLGWeighting (torchjd @ 46962c2,
    src/torchjd/aggregation/_imtl_g.py), equal to the above when G G^T is invertible and
    defined otherwise: v = pinv(G G^T) @ sqrt(diag(G G^T)); weights = v / sum(v), or zeros if
    |sum(v)| < 1e-12. pinv cutoff here: T * float64 eps relative (torch's default rtol for the
    dtype; TorchJD would use float32 eps on float32 input). Caution: with a singular G G^T it
    need not give equal projections even where LibMTL's form is defined: for g_0 = (1, 0),
    g_1 = (-2, 0) LibMTL gives weights (2/3, 1/3), d = 0; TorchJD gives (-1, 2), d = (-5, 0).
    """
    g = _as_grads(grads)
    if generalized:
        k = g @ g.T
        dd = np.sqrt(np.diagonal(k))
        v = np.linalg.pinv(k, rcond=k.shape[0] * np.finfo(np.float64).eps) @ dd
        v_sum = v.sum()
        weights = np.zeros_like(v) if abs(v_sum) < 1e-12 else v / v_sum
        return weights @ g, weights
    with np.errstate(divide="ignore", invalid="ignore"):
        grads_unit = g / np.linalg.norm(g, axis=-1, keepdims=True)
    dmat = g[0:1] - g[1:]
    umat = grads_unit[0:1] - grads_unit[1:]
    alpha = (g[0] @ umat.T) @ np.linalg.inv(dmat @ umat.T)
    weights = np.concatenate([[1 - alpha.sum()], alpha])
    return weights @ g, weights


# --------------------------------------------------------------------------------------------
# 7. Nash-MTL
# --------------------------------------------------------------------------------------------


def _nash_subproblem(gtg_n: np.ndarray, nf: float, alpha_p: np.ndarray):
    """One convex subproblem of NashMTL, the cvxpy problem re-expressed for scipy.

    cvxpy (nash-mtl methods/weight_methods.py ``_init_optim_problem``): variable alpha >= 0,
    minimise sum(G alpha) + phi_tag . (alpha - alpha_p) / nf, phi_tag = 1/alpha_p +
    (1/(G alpha_p)) @ G, s.t. -log(alpha_i * nf) - log((G alpha)_i) <= 0, G = the normalised
    G G^T and nf its normalisation factor. Here: the same linear objective c . alpha (constant
    dropped; G symmetric so sum(G alpha) = G.sum(0) . alpha) and each log constraint in the
    equivalent product form nf * alpha_i * (G alpha)_i - 1 >= 0 (the same set for alpha >= 0),
    solved by SLSQP with analytic jacobians. Returns None where cvxpy leaves the variable's
    value None: the problem is infeasible (no alpha > 0 with G alpha > 0: linprog) or unbounded
    (a recession direction delta >= 0, G delta >= 0 with c . delta < 0: linprog), or non-finite
    data (a zero G alpha_p), or the solve fails.
    """
    t = gtg_n.shape[0]
    g_prvs_alpha = gtg_n @ alpha_p
    with np.errstate(divide="ignore", invalid="ignore"):
        prvs_phi_tag = 1 / alpha_p + (1 / g_prvs_alpha) @ gtg_n
    cvec = gtg_n.sum(axis=0) + prvs_phi_tag / nf
    if not np.all(np.isfinite(cvec)):
        return None
    ones = np.ones((1, t))
    # Feasible iff max s s.t. alpha >= s, G alpha >= s, sum(alpha) = 1 has s > 0.
    feas = linprog(
        np.concatenate([np.zeros(t), [-1.0]]),
        A_ub=np.block([[-np.eye(t), np.ones((t, 1))], [-gtg_n, np.ones((t, 1))]]),
        b_ub=np.zeros(2 * t),
        A_eq=np.hstack([ones, [[0.0]]]),
        b_eq=[1.0],
        bounds=[(0, None)] * t + [(None, 1)],
    )
    if not feas.success or -feas.fun <= 1e-12:
        return None
    # Unbounded iff min c . delta s.t. delta >= 0, G delta >= 0, sum(delta) = 1 is < 0.
    rec = linprog(cvec, A_ub=-gtg_n, b_ub=np.zeros(t), A_eq=ones, b_eq=[1.0], bounds=(0, None))
    if rec.success and rec.fun < -1e-12 * np.abs(cvec).max():
        return None

    def cons_f(a):
        return nf * a * (gtg_n @ a) - 1.0

    def cons_j(a):
        return nf * (np.diag(gtg_n @ a) + a[:, None] * gtg_n)

    start = alpha_p
    if np.min(alpha_p) <= 0 or np.min(cons_f(alpha_p)) < 0:  # start from a feasible point
        a0 = feas.x[:t]
        start = a0 * np.sqrt(1.0 / np.min(nf * a0 * (gtg_n @ a0))) * 1.01
    res = minimize(
        lambda a: cvec @ a,
        start,
        jac=lambda a: cvec,
        bounds=[(0.0, None)] * t,
        constraints=[{"type": "ineq", "fun": cons_f, "jac": cons_j}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    a = res.x
    if not np.all(np.isfinite(a)) or np.min(cons_f(a)) < -1e-6 or np.min(a) < -1e-9:
        return None
    return np.maximum(a, 0.0)


def nash_mtl(grads, prev_alpha=None, optim_niter: int = 20, max_norm: float = 1.0):
    """Nash-MTL (Navon et al. 2022, "Multi-Task Learning as a Bargaining Game"), one weight
    update plus the update direction.

    Transcribes AvivNavon/nash-mtl methods/weight_methods.py class NashMTL (@ cce1840; LibMTL's
    Nash_MTL.py @ 4336804 is the same code): GTG = G G^T; nf = ||GTG||_F (torch.norm of the
    matrix); gtg = GTG / nf. ``solve_optimization``: alpha_t = prev_alpha (ones at the first
    step, then the previous step's alpha: state to keep); up to ``optim_niter`` (20) times:
    solve the convex subproblem linearised at alpha_t (``_nash_subproblem``); stop if it has no
    solution, or ``||gtg @ alpha_t - 1/(alpha_t + 1e-10)|| < 1e-3``, or ``||new - alpha_t|| <
    1e-6``, BEFORE moving to it (so on a stop the previous iterate is kept, even if the new
    solution exists); else alpha_t = new. d = alpha @ G, then ``clip_grad_norm_(shared,
    max_norm)``: d *= min(1, max_norm / (||d|| + 1e-6)) when max_norm > 0 (default 1.0).

    Returns ``(d, weights, alpha)``: weights = alpha * clip factor so d == weights @ grads;
    alpha the new state (pass as prev_alpha next step). ``update_weights_every`` (default 1) is
    the caller's: on other steps the reference reuses alpha unchanged. Weights sum to nothing
    in particular. At a converged solution the constraints are active: alpha_i (GTG alpha)_i =
    1 with the RAW GTG (the nf inside the log constraint undoes the normalisation), i.e. the
    paper's GTG alpha = 1/alpha; see ``nash_residual``.

    Deviations: cvxpy+ECOS replaced by SLSQP on the same subproblem (same solution up to
    solver tolerance, so the 1e-6 stop can trigger one iteration earlier or later; checked once,
    outside this repo, against the reference's own cvxpy 1.9.3 + ECOS 2.0.14 code on 150 random
    2-4-task inputs and a 30-step sequence: alpha within 2e-7 relative, same stuck cases); float64
    instead of the reference's float32 prev_alpha. Whenever a subproblem has no solution the
    reference keeps alpha_t, and so does this: infeasible for degenerate inputs (a zero row,
    opposite rows), and UNBOUNDED for some ordinary conflicting ones (about 3% of Gaussian
    2-4-task draws at alpha_t = ones), so at the first step it returns all ones (the plain
    sum, clipped) and, prev_alpha staying ones, starts there again next step. (The reference
    also swallows every solver exception with a bare ``except``: a missing ECOS would make
    every step "keep prev_alpha".)
    """
    g = _as_grads(grads)
    t = g.shape[0]
    gtg = g @ g.T
    nf = float(np.linalg.norm(gtg))
    alpha_t = np.ones(t) if prev_alpha is None else np.asarray(prev_alpha, np.float64).copy()
    if nf > 0:
        gtg_n = gtg / nf
        for _ in range(optim_niter):
            new = _nash_subproblem(gtg_n, nf, alpha_t)
            if (
                new is None
                or np.linalg.norm(gtg_n @ alpha_t - 1 / (alpha_t + 1e-10)) < 1e-3
                or np.linalg.norm(new - alpha_t) < 1e-6
            ):
                break
            alpha_t = new
    d = alpha_t @ g
    coef = 1.0
    if max_norm > 0:
        coef = min(1.0, max_norm / (np.linalg.norm(d) + 1e-6))
    return d * coef, alpha_t * coef, alpha_t


def nash_residual(grads, alpha, normalized: bool = False) -> np.ndarray:
    """Residual of Nash-MTL's bargaining equations at ``alpha``, elementwise (T,).

    Default: GTG alpha - 1/alpha with the raw GTG = G G^T, the scale at which the reference's
    constraints (alpha_i * nf * (gtg alpha)_i >= 1) put the solution; ~0 at nash_mtl's alpha.
    ``normalized=True``: the reference's stopping quantity gtg @ alpha - 1/(alpha + 1e-10)
    with gtg = GTG / ||GTG||_F, which is NOT zero at the solution unless ||GTG||_F = 1 (there
    gtg alpha = 1/(nf alpha)); the reference's first stopping test therefore rarely fires.
    """
    g = _as_grads(grads)
    a = np.asarray(alpha, dtype=np.float64)
    gtg = g @ g.T
    if normalized:
        return gtg / np.linalg.norm(gtg) @ a - 1 / (a + 1e-10)
    return gtg @ a - 1 / a


# --------------------------------------------------------------------------------------------
# 8. Aligned-MTL
# --------------------------------------------------------------------------------------------


def aligned_mtl(grads, scale_mode: str = "min"):
    """Aligned-MTL (Senushkin et al. 2023, "Independent Component Alignment for Multi-Task
    Learning"), LibMTL's update.

    Transcribes LibMTL/weighting/Aligned_MTL.py (LibMTL @ 4336804), equal to SamsungLabs/MTL
    code/optim/aligned/solver.py ``ProcrustesSolver`` + balancer.py ``AlignedMTLBalancer``
    (@ 3f577f1): M = G G^T; eigh (torch.symeig, ascending); tol = max(lambda) * T *
    float32 eps (``torch.finfo()`` is the default dtype's); rank = #(lambda > tol); keep the
    ``rank`` largest, descending; B = sqrt(lambda_min_kept) * V diag(1/sqrt(lambda)) V^T;
    weights = B.sum(0); d = weights @ grads. NOT divided by T (TorchJD's AlignedMTL is: it
    applies B to the mean weighting 1/T). ``scale_mode`` 'median' / 'rmse' are SamsungLabs'
    options (sqrt(median lambda) / sqrt(mean lambda) instead of sqrt(lambda_min)); LibMTL has
    'min' only. All-zero gradients (rank 0) raise, as LibMTL would (TorchJD returns identity).
    """
    g = _as_grads(grads)
    m = g @ g.T
    lmbda, v = np.linalg.eigh(m)
    tol = np.max(lmbda) * max(m.shape[-2:]) * _TORCH_DEFAULT_EPS
    rank = int(np.sum(lmbda > tol))
    if rank == 0:
        raise ValueError("Aligned-MTL: all gradients are zero (rank 0)")
    order = np.argsort(-lmbda, kind="stable")
    lmbda, v = lmbda[order][:rank], v[:, order][:, :rank]
    if scale_mode == "min":
        scale = lmbda[-1]
    elif scale_mode == "median":
        scale = np.median(lmbda)
    elif scale_mode == "rmse":
        scale = lmbda.mean()
    else:
        raise ValueError(f"unknown scale_mode {scale_mode!r}")
    sigma = np.diag(1 / np.sqrt(lmbda))
    b = np.sqrt(scale) * ((v @ sigma) @ v.T)
    weights = b.sum(axis=0)
    return weights @ g, weights


# --------------------------------------------------------------------------------------------
# 9. MGDA-UB
# --------------------------------------------------------------------------------------------


def _min_norm_element_from2(v1v1, v1v2, v2v2):
    if v1v2 >= v1v1:
        return 0.999, v1v1
    if v1v2 >= v2v2:
        return 0.001, v2v2
    gamma = -1.0 * ((v1v2 - v2v2) / (v1v1 + v2v2 - 2 * v1v2))
    cost = v2v2 + gamma * (v1v2 - v2v2)
    return gamma, cost


def _min_norm_2d(grad_mat):
    dmin = 1e8
    sol = None
    n = grad_mat.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            c, d = _min_norm_element_from2(grad_mat[i, i], grad_mat[i, j], grad_mat[j, j])
            if d < dmin:
                dmin = d
                sol = [(i, j), c, d]
    if sol is None:  # LibMTL would hit an UnboundLocalError: every pair's cost >= 1e8
        raise ValueError("MGDA: every pairwise min-norm cost is >= 1e8")
    return sol


def _projection2simplex(y):
    m = len(y)
    sorted_y = np.sort(y)[::-1]
    tmpsum = 0.0
    tmax_f = (np.sum(y) - 1.0) / m
    for i in range(m - 1):
        tmpsum += sorted_y[i]
        tmax = (tmpsum - 1) / (i + 1.0)
        if tmax > sorted_y[i + 1]:
            tmax_f = tmax
            break
    return np.maximum(y - tmax_f, np.zeros(m))


def _next_point(cur_val, grad, n):
    proj_grad = grad - (np.sum(grad) / n)
    tm1 = -1.0 * cur_val[proj_grad < 0] / proj_grad[proj_grad < 0]
    tm2 = (1.0 - cur_val[proj_grad > 0]) / (proj_grad[proj_grad > 0])
    t = 1.0
    if np.sum(tm1 > 1e-7) > 0:
        t = np.min(tm1[tm1 > 1e-7])  # overwrites t (may exceed 1), as the reference does
    if np.sum(tm2 > 1e-7) > 0:
        t = min(t, np.min(tm2[tm2 > 1e-7]))
    next_point = proj_grad * t + cur_val
    return _projection2simplex(next_point)


def _find_min_norm_element(grads):
    max_iter = 250
    stop_crit = 1e-5
    grad_mat = grads @ grads.T
    init_sol = _min_norm_2d(grad_mat)
    n = grads.shape[0]
    sol_vec = np.zeros(n)
    sol_vec[init_sol[0][0]] = init_sol[1]
    sol_vec[init_sol[0][1]] = 1 - init_sol[1]
    if n < 3:
        return sol_vec
    iter_count = 0
    while iter_count < max_iter:
        grad_dir = -1.0 * (grad_mat @ sol_vec)
        new_point = _next_point(sol_vec, grad_dir, n)
        v1v1 = sol_vec @ grad_mat @ sol_vec
        v1v2 = sol_vec @ grad_mat @ new_point
        v2v2 = new_point @ grad_mat @ new_point
        nc, _ = _min_norm_element_from2(v1v1, v1v2, v2v2)
        new_sol_vec = nc * sol_vec + (1 - nc) * new_point
        change = new_sol_vec - sol_vec
        if np.sum(np.abs(change)) < stop_crit:
            return sol_vec
        sol_vec = new_sol_vec
        iter_count += 1
    return sol_vec


def mgda(grads, normalization: str = "none", losses=None):
    """MGDA-UB's min-norm solver (Sener & Koltun 2018, "Multi-Task Learning as Multi-Objective
    Optimization"), LibMTL's update.

    Transcribes LibMTL/weighting/MGDA.py (LibMTL @ 4336804; from isl-org/
    MultiObjectiveOptimization's MinNormSolver, copy read in nash-mtl methods/
    min_norm_solvers.py @ cce1840). Normalisation (``mgda_gn``): 'none' gn = 1, 'l2' gn = ||g_i||,
    'loss' gn = L_i, 'loss+' gn = L_i * ||g_i|| (``losses`` needed for the last two); ĝ_i =
    g_i / gn_i (no eps: zero norms give inf/nan, as LibMTL). Solver on ĝ: best pair from
    ``_min_norm_element_from2`` (edge cases give gamma 0.999 / 0.001, not 1 / 0; initial
    dmin 1e8), returned as is for T = 2; for T >= 3 up to 250 projected-gradient steps with
    exact line search, stopping when sum|change| < 1e-5 and then returning the PREVIOUS
    iterate. (The isl-org/nash-mtl copy never increments its iteration counter; LibMTL does.
    Checked once against that numpy copy on 300 random inputs: sol within 1e-11.) For T >= 3
    the solver is inexact: ||d||^2 exceeds the true minimum by up to ~7e-3 max ||g_i||^2 on
    random 5-task inputs (see ``min_norm_point``).

    LibMTL then backpropagates sum_i sol_i ĝ_i, i.e. the NORMALISED gradients: d = sol @ ĝ;
    weights = sol / gn so d == weights @ grads (raw). sol sums to 1. Returns
    ``(d, weights, sol)``. (isl-org instead weights the raw losses by sol, i.e. d = sol @
    grads, and nash-mtl's MGDA additionally multiplies sol by T; with 'none' all agree up to
    that factor.)
    """
    g = _as_grads(grads)
    t = g.shape[0]
    if normalization == "l2":
        gn = np.sqrt(np.sum(g**2, axis=-1))
    elif normalization in ("loss", "loss+"):
        if losses is None:
            raise ValueError(f"normalization {normalization!r} needs losses")
        gn = np.asarray(losses, dtype=np.float64)
        if normalization == "loss+":
            gn = gn * np.sqrt(np.sum(g**2, axis=-1))
    elif normalization == "none":
        gn = np.ones(t)
    else:
        raise ValueError(f"No support normalization type {normalization} for MGDA")
    with np.errstate(divide="ignore", invalid="ignore"):
        gh = g / gn[:, None]
        sol = _find_min_norm_element(gh)
        weights = sol / gn
    return sol @ gh, weights, sol


def min_norm_point(grads):
    """Min-norm point of the convex hull of the rows, independent of ``mgda``: a check for it.

    min_a ||sum_i a_i g_i||^2 over the simplex, by SLSQP on the Gram matrix scaled to unit
    largest diagonal, analytic gradient, ftol 1e-15. Returns ``(d, a)``; d is unique, a need
    not be (dependent rows).
    """
    g = _as_grads(grads)
    t = g.shape[0]
    k = g @ g.T
    s = float(np.max(np.diagonal(k)))
    if s == 0:
        return np.zeros(g.shape[1]), np.ones(t) / t
    ks = k / s
    res = minimize(
        lambda a: a @ ks @ a,
        np.ones(t) / t,
        jac=lambda a: 2 * ks @ a,
        bounds=[(0.0, 1.0)] * t,
        constraints=[{"type": "eq", "fun": lambda a: np.sum(a) - 1, "jac": lambda a: np.ones(t)}],
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    a = np.clip(res.x, 0.0, None)
    a = a / a.sum()
    return a @ g, a


# --------------------------------------------------------------------------------------------
# 10. DWA, 11. RLW
# --------------------------------------------------------------------------------------------


def dwa_weights(loss_history, temperature: float = 2.0) -> np.ndarray:
    """DWA (Liu et al. 2019, "End-to-End Multi-Task Learning with Attention") loss weights for
    the current epoch.

    Transcribes LibMTL/weighting/DWA.py (LibMTL @ 4336804; same rule as Cranial-XIX/CAGrad's
    and AuxiLearn's copies of lorenmt/mtan): ``loss_history`` is (E, T), one row per COMPLETED
    epoch (LibMTL's ``train_loss_buffer[:, e]``: the batch-size-weighted mean over epoch e of
    each term's unweighted training loss); the current epoch is E (0-based). If E > 1:
    r_i = L[E-1, i] / L[E-2, i] and weights = T * softmax(r / temperature) (sum to T);
    epochs 0 and 1: all ones. Temperature default 2. Weights apply to the losses, so
    d = weights @ grads. (nash-mtl's DynamicWeightAverage is a different, iteration-window
    variant, not transcribed.)
    """
    hist = np.asarray(loss_history, dtype=np.float64)
    if hist.ndim != 2:
        raise ValueError(f"loss_history must be (epochs, T), got shape {hist.shape}")
    t = hist.shape[1]
    if hist.shape[0] <= 1:
        return np.ones(t)
    w_i = hist[-1] / hist[-2]
    z = w_i / temperature
    e = np.exp(z - z.max())
    return t * e / e.sum()


def rlw_weights(normal_draws) -> np.ndarray:
    """RLW (Lin et al. 2022, "Reasonable Effectiveness of Random Weighting") loss weights.

    Transcribes LibMTL/weighting/RLW.py (LibMTL @ 4336804; nash-mtl's RLW is identical):
    weights = softmax(z), z ~ N(0, 1)^T drawn fresh each step (``torch.randn(task_num)``, here
    the argument). Sum to 1 (not T). Weights apply to the losses: d = weights @ grads.
    """
    z = np.asarray(normal_draws, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


# --------------------------------------------------------------------------------------------
# 12. UPGrad
# --------------------------------------------------------------------------------------------


def _project_weight_vector(u: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """argmin_v v^T G v s.t. v >= u (TorchJD: quadprog ``solve_qp(G, 0, -I, -u)``), exactly,
    as NNLS: v = u + s, s >= 0, G = L L^T, min ||L^T s + L^T u||^2."""
    lt = np.linalg.cholesky(gram).T
    s, _ = nnls(lt, -lt @ u, maxiter=50 * len(u))
    return u + s


def upgrad(grads, norm_eps: float = 1e-4, reg_eps: float = 1e-4):
    """UPGrad (Quinton & Rey 2024, "Jacobian Descent for Multi-Objective Optimization").

    Transcribes TorchJD src/torchjd/aggregation/_upgrad.py UPGradWeighting, _utils/dual_cone.py
    and _linalg/_gramian.py (torchjd @ 46962c2; LibMTL's UPGrad.py is the same): K = G G^T;
    normalise: K / trace(K), or zeros if trace(K) < norm_eps (1e-4); regularise: + reg_eps
    (1e-4) * I; U = diag(1/T) (mean preference); for each row u of U, v = argmin v^T K v s.t.
    v >= u (each row's projection onto the dual cone, in weight space); weights = sum of the
    v's; d = weights @ grads (raw gradients). The QP is solved exactly by NNLS instead of
    quadprog (same strictly convex problem; checked once against qpsolvers' quadprog on 300
    random inputs: weights within 1e-13 relative).
    """
    g = _as_grads(grads)
    t = g.shape[0]
    k = g @ g.T
    tr = np.trace(k)
    kn = np.zeros_like(k) if tr < norm_eps else k / tr
    kr = kn + reg_eps * np.eye(t)
    u_mat = np.diag(np.ones(t) / t)
    w_mat = np.array([_project_weight_vector(u, kr) for u in u_mat])
    weights = w_mat.sum(axis=0)
    return weights @ g, weights
