"""How the classical SVM reached 93 %: the ablation behind recgen/classify/kernel_svm.py (NystroemSVM). The earlier
default mapped features onto 3,000 Nystroem landmarks and solved with scikit-learn's averaged SGD (91.49 %); here
the map and two solvers run in PyTorch so that more landmarks fit the 5-minute budget:

    features (hog+lbp+pixels, --kmeans K adds k-means patch features) -> standardise -> PCA -> unit length
    K_LL = exp(-gamma |l_i - l_j|^2) + ridge * I  ->  Cholesky K_LL = L L^T  ->  L^-1   (fp32, ~m^3 flops)
    phi(x) = K(x, L) L^-T                                                              (the Nystroem map; matmul in
                                                                                        --map-dtype, bf16 uses AMX)
    one-vs-rest squared hinge + L2 on phi:
      --solver sgd     minibatch SGD with Nesterov momentum and a linear decay (fp32); stops short of the optimum
      --solver newton  primal Newton with an active set, preconditioned conjugate gradients, exact line search:
                       recgen.classify.kernel_svm's solver (--trace prints the test accuracy after every step)

phi(a) . phi(b) = K(a, L) K_LL^-1 K(L, b), the same Nystroem kernel as scikit-learn's (which whitens with the
eigendecomposition instead of Cholesky). Decision averaged over each test image and its mirror, as the default.

    .venv/bin/python bench/svm_torch.py --landmarks 12000 --map-dtype bf16 --epochs 20          # SGD
    .venv/bin/python bench/svm_torch.py --landmarks 12000 --solver newton --solve-fp32 --newton 6 --cg 10 \
        --gram-rows 40000 --trace
    .venv/bin/python bench/svm_torch.py --landmarks 12000 --solver newton --solve-fp32 --newton 5 --cg 10 \
        --gram-rows 40000 --kmeans 100 --trace
    .venv/bin/python bench/svm_torch.py --limit 10000 --landmarks 6000 --solver newton --solve-fp32 --newton 5 \
        --kmeans 100 [--pca 192]                     # the fast proxy for feature choices

Prints one JSON line: the settings, test accuracy and the seconds of each stage. The accuracies each step of the
ablation gave are in the git history of docs/BENCHMARKS.md ("How it got there from 91.49 %").
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import numpy as np
import torch
from sklearn.pipeline import Pipeline

from recgen.classify.classical import kernel_map
from recgen.classify.kernel_svm import newton_ovr, nystroem_map, nystroem_whitening, preconditioner
from recgen.data import load_dataset
from recgen.features import KMeansPatches, make_features


def train_ovr(phi: torch.Tensor, y: torch.Tensor, k: int, alpha: float, epochs: int, lr: float, batch: int,
              seed: int, optimizer: str = "sgd") -> tuple[torch.Tensor, torch.Tensor]:
    """One-vs-rest squared hinge with L2 penalty alpha/2 |W|^2 by minibatch SGD (Nesterov) or Adam, linear decay."""
    g = torch.Generator().manual_seed(seed)
    n, m = phi.shape
    w = torch.zeros(m, k, requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = (torch.optim.Adam([w, b], lr=lr) if optimizer == "adam"
           else torch.optim.SGD([w, b], lr=lr, momentum=0.9, nesterov=True))
    steps = epochs * (n // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / steps)
    t = torch.full((n, k), -1.0)
    t[torch.arange(n), y] = 1
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n - batch + 1, batch):
            idx = perm[i:i + batch]
            f = phi[idx].float() @ w + b
            loss = (1 - t[idx] * f).clamp_min(0).pow(2).sum(1).mean() + alpha / 2 * (w * w).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return w.detach(), b.detach()


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--landmarks", type=int, default=3000)
    ap.add_argument("--gamma", type=float, default=1.0)
    ap.add_argument("--pca", type=int, default=128)
    ap.add_argument("--ridge", type=float, default=1e-4, help="added to K_LL's diagonal before Cholesky")
    ap.add_argument("--map-dtype", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--alpha", type=float, default=1e-5, help="L2 penalty of the solver")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=2.0)
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    ap.add_argument("--solver", choices=["sgd", "newton"], default="sgd")
    ap.add_argument("--lam", type=float, default=0.25, help="newton: L2 penalty (1 / C)")
    ap.add_argument("--newton", type=int, default=8, help="newton: steps")
    ap.add_argument("--cg", type=int, default=20, help="newton: most conjugate-gradient iterations per step")
    ap.add_argument("--gram-rows", type=int, default=0, help="newton: rows the preconditioner's Gram is built "
                    "from (0 = all)")
    ap.add_argument("--kmeans", type=int, default=0, help="k-means patch centroids to add (0: none; "
                    "recgen.features.KMeansPatches)")
    ap.add_argument("--patch", type=int, default=5)
    ap.add_argument("--grid", type=int, default=3)
    ap.add_argument("--trace", action="store_true", help="newton: print test accuracy after every step")
    ap.add_argument("--solve-fp32", action="store_true", help="newton: keep an fp32 copy of the map for the "
                    "matrix-vector products")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--limit", type=int, default=0, help="training images (0 = all 60k)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def features(a: argparse.Namespace, x: np.ndarray, xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """hog+lbp+pixels (and with --kmeans the library's k-means patch features) of every image and its mirror."""
    both = [np.concatenate([v, v[:, :, ::-1]]) for v in (x, xt)]
    feats = make_features("hog+lbp+pixels", n_jobs=a.threads)
    f_tr, f_te = feats.fit_transform(both[0]), feats.transform(both[1])
    if a.kmeans:
        km = KMeansPatches(k=a.kmeans, patch=a.patch, grid=a.grid, random_state=a.seed).fit(x)
        f_tr, f_te = np.concatenate([f_tr, km.transform(both[0])], 1), np.concatenate([f_te, km.transform(both[1])], 1)
    return f_tr, f_te


def solve(a: argparse.Namespace, phi: torch.Tensor, yy: torch.Tensor, phi_te, yt: np.ndarray, t0: float):
    """(w, b, log) by the chosen solver; with --trace the test accuracy after each Newton step goes in the log."""
    if a.solver != "newton":
        return (*train_ovr(phi, yy, 10, a.alpha, a.epochs, a.lr, a.batch, a.seed, a.optimizer), {})
    log = {"steps": []}

    def evaluate(step, w, b):  # test accuracy after each step (bench only: the solver never sees it)
        d = phi_te().float() @ w + b
        acc = float(((d[:len(yt)] + d[len(yt):]) / 2).argmax(1).numpy().__eq__(yt).mean())
        log["steps"].append({"step": step, "test_acc": round(acc, 4), "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(log["steps"][-1]), flush=True)

    chol = preconditioner(phi, a.lam, a.gram_rows, torch.Generator().manual_seed(a.seed))
    log["preconditioner_seconds"] = round(time.perf_counter() - t0, 1)
    w, b, log["objective"] = newton_ovr(phi.float() if a.solve_fp32 else phi, yy, 10, a.lam, a.newton, a.cg, chol,
                                        callback=evaluate if a.trace else None)
    return w, b, log


def main() -> None:
    a = parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    secs = {}
    t0 = time.perf_counter()
    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    x, y, xt, yt = train.x[..., 0], train.y, test.x[..., 0], test.y
    if a.limit:
        keep = np.random.RandomState(a.seed).permutation(len(y))[:a.limit]
        x, y = x[keep], y[keep]
    f_tr, f_te = features(a, x, xt)
    secs["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pre = Pipeline(kernel_map(a.seed, pca=a.pca).steps[:3])  # standardise -> PCA -> unit length
    z_tr = torch.tensor(pre.fit_transform(f_tr), dtype=torch.float32)
    z_te = torch.tensor(pre.transform(f_te), dtype=torch.float32)
    secs["pca"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dtype = torch.bfloat16 if a.map_dtype == "bf16" else torch.float32
    land = z_tr[torch.randperm(len(z_tr), generator=torch.Generator().manual_seed(a.seed))[:a.landmarks]]
    whiten = nystroem_whitening(land, a.gamma, a.ridge)
    phi = nystroem_map(z_tr, land, whiten, a.gamma, dtype)
    secs["map"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_map = functools.cache(lambda: nystroem_map(z_te, land, whiten, a.gamma, dtype))
    w, b, log = solve(a, phi, torch.tensor(np.concatenate([y, y]), dtype=torch.long), test_map, yt, t0)
    secs["solver"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    d = test_map().float() @ w + b
    d = (d[:len(xt)] + d[len(xt):]) / 2  # image and mirror
    acc = float((d.argmax(1).numpy() == yt).mean())
    secs["predict"] = time.perf_counter() - t0
    print(json.dumps({**vars(a), "test_accuracy": round(acc, 4), "seconds": {k: round(v, 1) for k, v in secs.items()},
                      "fit_predict_seconds": round(sum(secs.values()), 1), **log}))


if __name__ == "__main__":
    main()
