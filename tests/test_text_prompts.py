"""Free-text prompts: the prompt file's held-out phrasings stay unseen, the far-prompt warning separates garments
from other things, adherence counts the intended class, and a tiny text-conditional diffusion model samples
deterministically per prompt and seed."""

import warnings

import numpy as np
import pytest
import torch

from recgen import generate
from recgen.data import FASHION_CLASSES
from recgen.errors import RecgenError
from recgen.generate.condition import class_prompts, embed_texts, phrase_table
from recgen.loop.adherence import adherence, prompt_set, sample_prompts
from recgen.sanity import RecgenWarning, check_prompt


def _norm(p: str) -> str:
    return " ".join(p.lower().replace("-", " ").split())


@pytest.mark.parametrize("classes", [FASHION_CLASSES, ["red", "green", "blue"]])  # file entries | templates
def test_heldout_phrasings_are_never_training_phrasings(classes):
    train = class_prompts(classes, "train", framed=True)
    held = class_prompts(classes, "heldout")
    seen = {_norm(p) for ps in train for p in ps}
    assert all(len(ps) >= 3 for ps in held)
    assert not [p for ps in held for p in ps if _norm(p) in seen]
    # framing keeps each phrasing itself first, and multiplies the wordings a model trains on
    bare = class_prompts(classes, "train")
    assert all(ps[0] == b[0] for ps, b in zip(train, bare))
    if classes == FASHION_CLASSES:
        assert min(len(ps) for ps in train) >= 200


def test_far_prompt_warning_fires_for_other_things_not_for_any_phrasing():
    table = phrase_table(FASHION_CLASSES)
    for far in ("a red sports car on a highway", "a picture of a cat"):
        with pytest.warns(RecgenWarning, match=rf"'{far}' is far from every training description.*nearest classes"):
            assert check_prompt(far, embed_texts([far])[0], table, FASHION_CLASSES)
    phrasings = [p for split in ("train", "heldout") for ps in class_prompts(FASHION_CLASSES, split) for p in ps]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecgenWarning)  # any warning fails the test, naming the phrasing
        for p, e in zip(phrasings, embed_texts(phrasings)):
            assert not check_prompt(p, e, table, FASHION_CLASSES)


def test_adherence_counts_the_intended_class():
    prompts, intended = prompt_set(["a", "b"], "heldout")  # template phrasings: 3 per class
    assert len(prompts) == 6 and list(intended) == [0, 0, 0, 1, 1, 1]
    at = np.repeat(np.arange(6), 2)
    predicted = np.where(at == 5, 0, intended[at])  # the last phrasing's samples all land on class 0
    res = adherence(predicted, intended[at], at, prompts, ["a", "b"])
    assert res["adherence"] == pytest.approx(10 / 12) and res["per_class"] == {"a": 1.0, "b": pytest.approx(2 / 3)}
    assert next(iter(res["worst_phrasings"].items())) == (prompts[5], 0.0)
    assert res["confused_with"]["b"].startswith("a")


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    """A tiny text-conditional diffusion model, a few steps on 16x16 red or blue squares."""
    out = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(0)
    x = np.zeros((32, 16, 16, 3), dtype=np.uint8)
    y = np.arange(32) % 2
    for i in range(32):
        r, c = rng.integers(0, 9, 2)
        x[i, r:r + 8, c:c + 8, 2 * y[i]] = 230  # channel 0 red, channel 2 blue
    data = out / "colours.npz"
    np.savez(data, x=x, y=y, classes=np.array(["red", "blue"]))
    return generate.train(model="diffusion", data=str(data), text_conditional=True, base=8, epochs=1, max_steps=3,
                          batch_size=16, val_fraction=0.0, steps=4, threads=1, out=str(out))


def test_same_prompt_and_seed_give_the_same_images(colours):
    x, y = colours.sample(6, prompt="a red square", seed=3)
    assert x.shape == (6, 16, 16, 3) and list(y) == [0] * 6  # recorded: the nearest class of the prompt
    assert np.array_equal(x, colours.sample(6, prompt="a red square", seed=3)[0])
    assert not np.array_equal(x, colours.sample(6, prompt="a red square", seed=4)[0])
    assert not np.array_equal(x, colours.sample(6, prompt="something coloured blue", seed=3)[0])
    # one prompt per image: a batch over several phrasings (how adherence is sampled)
    both = ["a red square"] * 2 + ["something coloured blue"] * 2
    x, y = colours.sample(4, prompt=both, seed=3)
    assert list(y) == [0, 0, 1, 1] and np.array_equal(x, colours.sample(4, prompt=both, seed=3)[0])
    with pytest.raises(RecgenError, match="one text or one per image"):
        colours.sample(3, prompt=both, seed=3)


def test_adherence_samples_every_heldout_phrasing(colours):
    x, intended, at, prompts, warned = sample_prompts(colours, 8, seed=0)
    assert len(x) == 8 and len(prompts) == 6 and list(np.bincount(at)) == [2, 2, 1, 1, 1, 1]
    assert list(intended) == [0, 0, 0, 0, 0, 1, 1, 1] and set(warned) <= set(prompts)


def test_web_ui_shows_the_far_prompt_warning(colours, monkeypatch):
    """The UI's generate handler (wrapped by user_errors) samples the text run and turns the warning into a notice."""
    import gradio as gr

    from recgen.serve.ui_parts import user_errors

    shown = []
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: shown.append(message))
    x, _ = user_errors(lambda p: colours.sample(2, prompt=p, seed=0))("a red sports car on a highway")
    assert x.shape == (2, 16, 16, 3) and len(shown) == 1 and "far from every training description" in shown[0]


@pytest.fixture(scope="module")
def fields(tmp_path_factory):
    """A tiny text-conditional diffusion model trained long enough to learn its two classes, 8x8 fields of red or
    of blue, and the images it trained on."""
    out = tmp_path_factory.mktemp("fields")
    rng = np.random.default_rng(0)
    y = np.arange(64) % 2
    x = rng.integers(20, 60, (64, 8, 8, 3)).astype(np.uint8)
    x[y == 0, ..., 0] += 160  # red
    x[y == 1, ..., 2] += 160  # blue
    data = out / "fields.npz"
    np.savez(data, x=x, y=y, classes=np.array(["red", "blue"]))
    run = generate.train(model="diffusion", data=str(data), text_conditional=True, base=16, epochs=150,
                         max_steps=600, batch_size=16, lr=2e-3, val_fraction=0.0, steps=8, threads=1, out=str(out))
    return run, x, y


def test_two_prompts_give_different_class_distributions(fields):
    """Measured by a tiny judge (a logistic regression on the mean colour of the training images): each prompt's
    samples are mostly of the class it describes, in words the model never trained on."""
    from sklearn.linear_model import LogisticRegression

    run, x, y = fields
    judge = LogisticRegression().fit(x.reshape(len(x), -1, 3).mean(1), y)
    red = {}
    for prompt in ("a bright red patch", "something coloured blue"):
        s, _ = run.sample(64, prompt=prompt, seed=0, guidance=5.0)
        red[prompt] = float((judge.predict(s.reshape(len(s), -1, 3).mean(1)) == 0).mean())
    assert red["a bright red patch"] >= 0.8 and red["something coloured blue"] <= 0.2, red


def test_a_student_of_a_text_teacher_takes_prompts(fields, tmp_path):
    """`generate distill` carries text conditioning over: the student keeps its teacher's text head and samples
    from a prompt, deterministically per seed."""
    from recgen.generate.condition import text_conditioners

    teacher = fields[0]
    student = generate.distill(str(teacher.path), epochs=1, max_steps=8, batch_size=16, steps=2, threads=1,
                               out=str(tmp_path))
    head, taught = text_conditioners(student.modules)[0], text_conditioners(teacher.modules)[0]
    assert torch.equal(head.head_weight, taught.head_weight) and torch.equal(head.head_bias, taught.head_bias)
    x, y = student.sample(8, prompt="a bright red patch", steps=1, seed=0)
    assert x.shape == (8, 8, 8, 3) and list(y) == [0] * 8
    assert np.array_equal(x, student.sample(8, prompt="a bright red patch", steps=1, seed=0)[0])
    assert not np.array_equal(x, student.sample(8, prompt="something coloured blue", steps=1, seed=0)[0])
