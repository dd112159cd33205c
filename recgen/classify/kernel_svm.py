"""An RBF-kernel SVM for tens of thousands of images on a CPU: a Nystroem map onto `landmarks` training vectors
(Williams & Seeger, NIPS 2000) and a one-vs-rest squared-hinge SVM on it, solved exactly by the primal Newton
method (Keerthi & DeCoste, JMLR 2005; Chapelle, Neural Computation 2007), both in PyTorch.

Why not scikit-learn's solvers: an exact SVC costs O(n^2) kernel evaluations (hours for 120k images on 2 cores),
and on a Nystroem map liblinear's LinearSVC is slow while averaged SGD stops far from the optimum
(bench/svm_solvers.py, bench/svm_torch.py). A few Newton steps reach the accuracy of the converged solution;
the first step alone is kernel ridge regression.

The map phi(x) = K(x, L) K_LL^-1/2 (whitened by the Cholesky factor, K_LL = C C^T, phi = K(x, L) C^-T) is a
matrix product of n x m by m x m; where the CPU multiplies bfloat16 natively (AMX, AVX-512 BF16) it runs in
bfloat16 (precision "auto"), faster than fp32 (several times with AMX) with the same accuracy
(bench/svm_torch.py --map-dtype). Each Newton step solves (lam I + X_A^T X_A) s = -grad over the rows A inside
the margin by conjugate gradients, preconditioned with the Cholesky factor of lam I + X^T X over `gram_rows`
sampled rows, then takes an exact line search on the piecewise quadratic objective. The fitted model keeps only
the landmarks and coef_ = C^-T W (m x classes): predicting is K(x, L) coef_ + intercept_, no m x m matrix.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from recgen.device import resolve_precision

CHUNK = 8192  # rows per kernel block and per fp32 conversion: ~400 MB temporaries at 12,000 landmarks
FP32_COPY_BYTES = 8 << 30  # the solver converts a bf16 map to fp32 once when the copy fits in this much memory


def rbf(a: torch.Tensor, b: torch.Tensor, gamma: float) -> torch.Tensor:
    """exp(-gamma |a - b|^2) between the rows of a (n, d) and b (m, d), fp32."""
    d2 = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return torch.exp(-gamma * d2.clamp_min_(0))


class NystroemSVM(ClassifierMixin, BaseEstimator):
    """RBF SVM (squared hinge, one-vs-rest) on a Nystroem map, fitted by Newton's method. The objective per class
    is lam/2 |w|^2 + 1/2 sum_i max(0, 1 - t_i f(x_i))^2 with t_i = +-1, so lam = 1 / C of a scikit-learn SVC."""

    def __init__(self, landmarks=12000, gamma=1.0, lam=0.25, newton=3, cg=10, gram_rows=20000, precision="auto",
                 random_state=0):
        self.landmarks = landmarks  # kernel columns the map uses (at most the number of training rows)
        self.gamma = gamma  # RBF width: exp(-gamma |a - b|^2)
        self.lam = lam  # L2 penalty, 1 / C
        self.newton = newton  # Newton steps (the first is the kernel ridge solution)
        self.cg = cg  # most conjugate-gradient iterations per Newton step
        self.gram_rows = gram_rows  # rows the preconditioner's Gram matrix is estimated from (0 = all)
        self.precision = precision  # map matmul: "auto" (bf16 where the CPU has it natively), "bf16" or "fp32"
        self.random_state = random_state

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, yi = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"NystroemSVM needs samples of at least 2 classes in the data, but the data contains "
                             f"only one class: {self.classes_[0]!r}")
        dtype = torch.bfloat16 if resolve_precision(self.precision, torch.device("cpu")) == "bf16" else torch.float32
        gen = torch.Generator().manual_seed(int(self.random_state or 0))
        x = torch.from_numpy(X)
        with torch.no_grad():
            land = x[torch.randperm(len(x), generator=gen)[:min(self.landmarks, len(x))]]
            whiten = nystroem_whitening(land, self.gamma)
            phi = nystroem_map(x, land, whiten, self.gamma, dtype)
            chol = preconditioner(phi, self.lam, self.gram_rows, gen)  # bf16 products: native bf16 speed
            if phi.dtype != torch.float32 and phi.numel() * 4 <= FP32_COPY_BYTES:
                # The solver's matrix-vector products need fp32 (CPU matmuls return bf16 for bf16 inputs), and
                # one conversion costs what converting chunk by chunk costs per product.
                phi = phi.float()
            w, b, self.objective_ = newton_ovr(phi, torch.from_numpy(yi), len(self.classes_), self.lam,
                                               self.newton, self.cg, chol)
        self.n_iter_ = len(self.objective_)
        self.landmarks_ = land.numpy()
        self.coef_ = (whiten @ w).numpy()  # (m, classes): f(x) = K(x, L) coef_ + intercept_
        self.intercept_ = b.numpy()
        return self

    def _scores(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        x, land, coef = torch.from_numpy(X), torch.from_numpy(self.landmarks_), torch.from_numpy(self.coef_)
        with torch.no_grad():
            out = [rbf(x[i:i + CHUNK], land, self.gamma) @ coef for i in range(0, len(x), CHUNK)]
        return (torch.cat(out) if out else torch.zeros(0, len(self.classes_))).numpy() + self.intercept_

    def decision_function(self, X):
        """(n, classes) margins; for two classes the margin of classes_[1] over classes_[0], shape (n,)."""
        s = self._scores(X)
        return s[:, 1] - s[:, 0] if len(self.classes_) == 2 else s

    def predict(self, X):
        best = self._scores(X).argmax(1)  # first: it checks that the model is fitted
        return self.classes_[best]


def nystroem_whitening(land: torch.Tensor, gamma: float, ridge: float = 1e-4) -> torch.Tensor:
    """L^-T for the Cholesky factor K_LL + ridge = L L^T of the landmarks' kernel: phi(x) = K(x, L) L^-T is the
    Nystroem map, phi(a) . phi(b) = K(a, L) K_LL^-1 K(L, b) (scikit-learn's Nystroem whitens by an
    eigendecomposition instead)."""
    # fp32 is enough with a ridge on the diagonal (it bounds the condition number; duplicate landmarks would make
    # K_LL singular), and the m^3 factorisation costs a quarter of fp64's.
    chol = cholesky_jitter(rbf(land, land, gamma), ridge)
    return torch.linalg.solve_triangular(chol, torch.eye(len(land)), upper=False).T


def nystroem_map(x: torch.Tensor, land: torch.Tensor, whiten: torch.Tensor, gamma: float,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """phi(x) = K(x, L) whiten, (n, m) in `dtype` (bf16: the matmul runs on native bf16 units), CHUNK rows at a
    time."""
    phi = torch.empty(len(x), whiten.shape[1], dtype=dtype)
    w = whiten.to(dtype)
    for i in range(0, len(x), CHUNK):
        phi[i:i + CHUNK] = rbf(x[i:i + CHUNK], land, gamma).to(dtype) @ w
    return phi


def cholesky_jitter(a: torch.Tensor, ridge: float) -> torch.Tensor:
    """Lower Cholesky factor of a + ridge * mean(diag) * I (in place on a), the ridge raised tenfold from 1e-6
    until the factorisation succeeds."""
    scale = float(a.diagonal().mean()) or 1.0
    a.diagonal().add_(ridge * scale)
    chol, info = torch.linalg.cholesky_ex(a)
    added, extra = 0.0, 1e-6
    while int(info):
        if extra > 1:
            raise ValueError("kernel matrix is not positive definite even with a ridge of its mean diagonal "
                             "(NaN or inf in the data?)")
        a.diagonal().add_((extra - added) * scale)
        added = extra
        chol, info = torch.linalg.cholesky_ex(a)
        extra *= 10
    return chol


def gram(phi: torch.Tensor, rows: int, gen: torch.Generator) -> torch.Tensor:
    """(m+1, m+1) fp32 Gram of [phi, 1] over `rows` random rows (all if 0 or more than n), scaled up to all n.
    Each chunk's product may be bf16 (rounded to 3 digits): this matrix only preconditions."""
    n, m = phi.shape
    idx = torch.randperm(n, generator=gen)[:rows] if 0 < rows < n else torch.arange(n)
    g = torch.zeros(m + 1, m + 1)
    for i in range(0, len(idx), CHUNK):
        p = phi[idx[i:i + CHUNK]]
        g[:m, :m] += (p.T @ p).float()
        g[:m, m] += p.float().sum(0)
    g[m, :m] = g[:m, m]
    g[m, m] = len(idx)
    return g * (n / len(idx))


def preconditioner(phi: torch.Tensor, lam: float, rows: int, gen: torch.Generator) -> torch.Tensor:
    """Cholesky factor of lam I + [phi, 1]^T [phi, 1], the Gram estimated from `rows` sampled rows: every Newton
    system's matrix is this one restricted to the rows inside the margin."""
    g = gram(phi, rows, gen)
    g.diagonal().add_(lam)
    return cholesky_jitter(g, 0.0)  # bf16 rounding of the Gram can cost definiteness


def newton_ovr(phi: torch.Tensor, y: torch.Tensor, k: int, lam: float, steps: int, cg: int, chol: torch.Tensor,
               tol: float = 1e-3, callback=None) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """One-vs-rest squared-hinge SVMs for k classes on features phi (n, m), all classes at once as the columns of
    W (m+1, k) (the last row is the bias, lightly penalised so every system stays definite), with conjugate
    gradients preconditioned by `chol` (see preconditioner). Returns the weights, the biases and the objective
    summed over classes after each step; `callback(step, weights, biases)`, if given, sees them after each step."""
    n, m = phi.shape
    bf16 = phi.dtype != torch.float32

    def mv(d):  # [phi, 1] @ d
        if not bf16:
            return phi @ d[:m] + d[m]
        return torch.cat([phi[i:i + CHUNK].float() @ d[:m] for i in range(0, n, CHUNK)]) + d[m]

    def rmv(r):  # [phi, 1]^T @ r
        if not bf16:
            top = phi.T @ r
        else:
            top = sum(phi[i:i + CHUNK].float().T @ r[i:i + CHUNK] for i in range(0, n, CHUNK))
        return torch.cat([top, r.sum(0, keepdim=True)])

    reg = torch.full((m + 1, 1), lam)
    reg[m] = lam * 1e-3
    t = torch.full((n, k), -1.0)
    t[torch.arange(n), y] = 1
    w = torch.zeros(m + 1, k)
    f = torch.zeros(n, k)
    objective = []
    for _ in range(steps):
        act = (t * f < 1).float()
        grad = reg * w + rmv(act * (f - t))
        gnorm = grad.norm(dim=0)
        s, r = torch.zeros_like(w), -grad
        z = torch.cholesky_solve(r, chol)
        p, rz = z.clone(), (r * z).sum(0)
        for _ in range(cg):  # preconditioned conjugate gradients on H s = -grad, per column
            hp = reg * p + rmv(act * mv(p))
            a = rz / (p * hp).sum(0).clamp_min(1e-30)
            s += a * p
            r -= a * hp
            if bool((r.norm(dim=0) <= tol * gnorm).all()):
                break
            z = torch.cholesky_solve(r, chol)
            rz_new = (r * z).sum(0)
            p = z + rz_new / rz.clamp_min(1e-30) * p
            rz = rz_new
        # Exact line search: the objective along s is piecewise quadratic in tau, its derivative piecewise linear
        # and increasing, so Newton's method on the derivative lands on the minimum in a few cheap passes.
        zs = mv(s)
        tau = torch.ones(k)
        for _ in range(20):
            ff = f + tau * zs
            a = (t * ff < 1).float()
            d1 = (reg * (w + tau * s) * s).sum(0) + (a * (ff - t) * zs).sum(0)
            d2 = (reg * s * s).sum(0) + (a * zs * zs).sum(0)
            step = d1 / d2.clamp_min(1e-30)
            tau -= step
            if bool((step.abs() < 1e-6).all()):
                break
        w += tau * s
        f += tau * zs
        objective.append(float((0.5 * (reg * w * w).sum() + 0.5 * ((1 - t * f).clamp_min(0) ** 2).sum())))
        if callback is not None:
            callback(len(objective), w[:m], w[m])
    return w[:m], w[m], objective


__all__ = ["NystroemSVM", "newton_ovr", "preconditioner", "rbf"]
