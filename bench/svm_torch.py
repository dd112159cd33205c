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

    .venv/bin/python bench/svm_torch.py --landmarks 12000 --map-dtype bf16 --epochs 20          # SGD: 92.14 %
    .venv/bin/python bench/svm_torch.py --landmarks 12000 --solver newton --solve-fp32 --newton 6 --cg 10 \
        --gram-rows 40000 --trace                                                                # 92.66 %
    .venv/bin/python bench/svm_torch.py --landmarks 12000 --solver newton --solve-fp32 --newton 5 --cg 10 \
        --gram-rows 40000 --kmeans 100 --stride 1 --trace                                        # 92.87 %
    .venv/bin/python bench/svm_torch.py --limit 10000 --landmarks 6000 --solver newton --solve-fp32 --newton 5 \
        --kmeans 100 --stride 1 [--pca 192]                     # the fast proxy for feature choices: 91.17 / 91.47 %

Prints one JSON line: the settings, test accuracy and the seconds of each stage.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import MiniBatchKMeans
from sklearn.pipeline import Pipeline

from recgen.classify.classical import kernel_map
from recgen.classify.kernel_svm import newton_ovr, preconditioner, rbf
from recgen.data import load_dataset
from recgen.features import make_features


def kmeans_filters(x: np.ndarray, k: int, patch: int, seed: int, m: int = 100_000):
    """Single-layer k-means patch dictionary (Coates, Lee & Ng, AISTATS 2011) on (n, H, W) images in [0, 1]:
    `m` random patches, each brightness/contrast normalised, ZCA-whitened, k-means; centroids to unit length.
    Returns the filters that act on normalised patches ((patch^2, k): ZCA @ centroids^T) and the patch mean."""
    rng = np.random.RandomState(seed)
    n, h, w = x.shape
    i, r, c = rng.randint(0, n, m), rng.randint(0, h - patch + 1, m), rng.randint(0, w - patch + 1, m)
    a = np.arange(patch)
    p = x[i[:, None, None], r[:, None, None] + a[None, :, None], c[:, None, None] + a[None, None, :]].reshape(m, -1)
    p = p - p.mean(1, keepdims=True)
    p = p / np.sqrt(p.var(1, keepdims=True) + KM_EPS)
    mu = p.mean(0)
    e, v = np.linalg.eigh(np.cov(p - mu, rowvar=False))
    zca = v @ np.diag(1 / np.sqrt(e + 0.01)) @ v.T
    d = MiniBatchKMeans(k, batch_size=4096, n_init=3, random_state=seed).fit((p - mu) @ zca).cluster_centers_
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    return (zca @ d.T).astype(np.float32), mu.astype(np.float32)


KM_EPS = 10 / 255 ** 2  # contrast-normalisation floor: Coates et al. add 10 to the variance of 0..255 patches


def kmeans_encode(x: np.ndarray, filt: np.ndarray, mu: np.ndarray, patch: int, stride: int, grid: int,
                  alpha: float = 0.25, chunk: int = 64, polarity: int = 2) -> np.ndarray:
    """Soft-threshold encoding max(0, d.z - alpha), max(0, -d.z - alpha) of every normalised whitened patch z
    (Coates & Ng, ICML 2011), average-pooled over a grid x grid layout: (n, 2 k grid^2). The normalisation and
    whitening are folded into convolutions, so no patch is materialised."""
    k = filt.shape[1]
    wf = torch.from_numpy(np.ascontiguousarray(filt.T)).reshape(k, 1, patch, patch)
    wsum = wf.sum((1, 2, 3))[None, :, None, None]
    muw = torch.from_numpy(mu @ filt)[None, :, None, None]
    box = torch.full((1, 1, patch, patch), 1 / patch ** 2)
    out = []
    for s in range(0, len(x), chunk):
        b = torch.from_numpy(x[s:s + chunk])[:, None]
        mean = F.conv2d(b, box, stride=stride)
        sd = (F.conv2d(b * b, box, stride=stride) - mean * mean).clamp_min(0).add_(KM_EPS).sqrt_()
        r = (F.conv2d(b, wf, stride=stride) - mean * wsum).div_(sd).sub_(muw)
        pos = F.adaptive_avg_pool2d(F.relu(r - alpha), grid)
        if polarity == 1:
            out.append(pos.flatten(1))
            continue
        neg = F.adaptive_avg_pool2d(r.add_(alpha).neg_().relu_(), grid)
        out.append(torch.cat([pos, neg], 1).flatten(1))
    return torch.cat(out).numpy()


def nystroem(x: torch.Tensor, land: torch.Tensor, gamma: float, ridge: float, dtype: torch.dtype,
             chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """(map of x, the whitening matrix L^-T) for unit-length rows x (n, d) and landmarks (m, d)."""
    # fp32 is enough with the ridge on the diagonal (it bounds K_LL's condition number), and the triangular
    # inverse, m^3 flops, costs a quarter of what it would in fp64 here.
    k = rbf(land, land, gamma)
    k += ridge * torch.eye(len(land), dtype=k.dtype)
    chol = torch.linalg.cholesky(k)
    inv_t = torch.linalg.solve_triangular(chol, torch.eye(len(land), dtype=k.dtype), upper=False).T
    w = inv_t.to(dtype)
    return apply_map(x, land, w, gamma, chunk), w


def apply_map(x: torch.Tensor, land: torch.Tensor, w: torch.Tensor, gamma: float, chunk: int = 8192) -> torch.Tensor:
    out = torch.empty(len(x), w.shape[1], dtype=w.dtype)
    for i in range(0, len(x), chunk):
        out[i:i + chunk] = rbf(x[i:i + chunk], land, gamma).to(w.dtype) @ w
    return out


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


def main() -> None:
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
    ap.add_argument("--kmeans", type=int, default=0, help="k-means patch centroids to add (0: none)")
    ap.add_argument("--patch", type=int, default=5)
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--grid", type=int, default=3)
    ap.add_argument("--polarity", type=int, choices=[1, 2], default=2)
    ap.add_argument("--trace", action="store_true", help="newton: print test accuracy after every step")
    ap.add_argument("--solve-fp32", action="store_true", help="newton: keep an fp32 copy of the map for the "
                    "matrix-vector products")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--limit", type=int, default=0, help="training images (0 = all 60k)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    secs = {}
    t0 = time.perf_counter()
    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    x, y, xt, yt = train.x[..., 0], train.y, test.x[..., 0], test.y
    if a.limit:
        keep = np.random.RandomState(a.seed).permutation(len(y))[:a.limit]
        x, y = x[keep], y[keep]
    feats = make_features("hog+lbp+pixels", n_jobs=a.threads)
    f_tr = feats.fit_transform(np.concatenate([x, x[:, :, ::-1]]))
    f_te = feats.transform(np.concatenate([xt, xt[:, :, ::-1]]))
    if a.kmeans:
        xs = (x[..., 0] if x.ndim == 4 else x).astype(np.float32) / 255
        xts = (xt[..., 0] if xt.ndim == 4 else xt).astype(np.float32) / 255
        filt, mu = kmeans_filters(xs, a.kmeans, a.patch, a.seed)
        enc = [kmeans_encode(np.ascontiguousarray(v), filt, mu, a.patch, a.stride, a.grid,
                             polarity=a.polarity)
               for v in (np.concatenate([xs, xs[:, :, ::-1]]), np.concatenate([xts, xts[:, :, ::-1]]))]
        f_tr, f_te = np.concatenate([f_tr, enc[0]], 1), np.concatenate([f_te, enc[1]], 1)
    secs["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pre = Pipeline(kernel_map(a.seed, pca=a.pca).steps[:3])  # standardise -> PCA -> unit length
    z_tr = torch.tensor(pre.fit_transform(f_tr), dtype=torch.float32)
    z_te = torch.tensor(pre.transform(f_te), dtype=torch.float32)
    secs["pca"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dtype = torch.bfloat16 if a.map_dtype == "bf16" else torch.float32
    land = z_tr[torch.randperm(len(z_tr), generator=torch.Generator().manual_seed(a.seed))[:a.landmarks]]
    phi, w_map = nystroem(z_tr, land, a.gamma, a.ridge, dtype)
    secs["map"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    yy = torch.tensor(np.concatenate([y, y]), dtype=torch.long)
    log = {}
    if a.solver == "newton":
        phi_te = apply_map(z_te, land, w_map, a.gamma)

        def evaluate(step, w, b):  # test accuracy after each step (bench only: the solver never sees it)
            d = phi_te.float() @ w + b
            acc = float(((d[:len(xt)] + d[len(xt):]) / 2).argmax(1).numpy().__eq__(yt).mean())
            log["steps"].append({"step": step, "test_acc": round(acc, 4),
                                 "seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps(log["steps"][-1]), flush=True)

        gen = torch.Generator().manual_seed(a.seed)
        chol = preconditioner(phi, a.lam, a.gram_rows, gen)
        log = {"preconditioner_seconds": round(time.perf_counter() - t0, 1), "steps": []}
        w, b, log["objective"] = newton_ovr(phi.float() if a.solve_fp32 else phi, yy, 10, a.lam, a.newton, a.cg,
                                            chol, callback=evaluate if a.trace else None)
    else:
        w, b = train_ovr(phi, yy, 10, a.alpha, a.epochs, a.lr, a.batch, a.seed, a.optimizer)
    secs["solver"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    d = apply_map(z_te, land, w_map, a.gamma).float() @ w + b
    d = (d[:len(xt)] + d[len(xt):]) / 2  # image and mirror
    acc = float((d.argmax(1).numpy() == yt).mean())
    secs["predict"] = time.perf_counter() - t0
    print(json.dumps({**vars(a), "test_accuracy": round(acc, 4), "seconds": {k: round(v, 1) for k, v in secs.items()},
                      "fit_predict_seconds": round(sum(secs.values()), 1), **log}))


if __name__ == "__main__":
    main()
