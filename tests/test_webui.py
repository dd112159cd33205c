"""The web UI in a real browser (headless Chromium via selenium): each tab does its job end to end on tiny
runs, errors come back as text and clear the old result, and nothing is fetched from outside the server."""

import base64
import io
import json
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

from recgen import classify, detect, generate, restore
from recgen.serve.ui_parts import editor_image

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extras")
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from recgen.serve.app import create_app

    root = tmp_path_factory.mktemp("runs")
    classify.train(model="cnn", data="digits", epochs=1, limit=20, stem_width=8, widths="16,32", blocks="0,1",
                   threads=1, out=str(root))
    generate.train(model="diffusion", data="digits", epochs=1, max_steps=2, base=8, limit=20, steps=2,
                   val_fraction=0, threads=1, out=str(root))
    detect.train(data="digits", canvas=64, min_size=16, max_size=32, train_scenes=32, test_scenes=8, epochs=1,
                 widths="8,16,16,24", blocks="0,1,0,0", neck=16, batch_size=16, threads=1, out=str(root),
                 score_threshold=0.0, max_detections=5)  # an untrained net still returns boxes to draw
    restore.train(task="inpaint", data="digits", epochs=1, max_steps=10, batch_size=32, widths="8,16,16",
                  limit=30, threads=1, out=str(root))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(root), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and DRIVER):
        pytest.skip("no headless browser: `make test` installs Debian's chromium and chromium-driver as "
                    "root; here `chromium` or `chromedriver` is missing from PATH")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        opts.add_argument(flag)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    yield driver
    driver.quit()


def open_tab(driver, url, tab):
    driver.get(f"{url}/ui/")
    until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#classify-go"))
    if tab != "Classify":
        driver.find_element(By.XPATH, f"//button[@role='tab' and normalize-space()='{tab}']").click()
    time.sleep(0.5)  # the dropdowns fill in from the page's load event


def until(driver, cond, timeout=30, what=""):
    """Wait for `cond`; Gradio re-renders often, so an element gone stale in between means: look again."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(cond, what)


def shot(driver, url, path):
    """A screenshot, and the check that the page asked nothing of any host but the server."""
    driver.save_screenshot(str(path))
    outside = set()
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            u = msg["params"]["request"]["url"]
            if u.startswith(("http:", "https:", "ws:", "wss:")) and not u.startswith(url):
                outside.add(u)
    assert not outside, f"requests to other hosts: {sorted(outside)[:5]}"
    assert "[object Object]" not in driver.find_element(By.TAG_NAME, "body").text


def click(driver, css):
    driver.find_element(By.CSS_SELECTOR, css).click()


def images(driver, css):
    return [im for im in driver.find_elements(By.CSS_SELECTOR, f"{css} img") if im.get_attribute("src")]


def srcs(driver, css):
    return [im.get_attribute("src") for im in images(driver, css)]


def run_and_wait(driver, button, css, n=1, timeout=60):
    """Click `button`, wait for `n` new images under `css` (not those shown before the click) -> srcs."""
    before = set(srcs(driver, css))
    click(driver, button)
    return until(driver, lambda d: len(s := srcs(d, css)) == n and not set(s) & before and s, timeout,
                 f"{n} new images in {css}")


def pixels(driver, src: str) -> np.ndarray:
    """An image's pixels, fetched by the browser itself (`src`: a server URL or a data URI)."""
    data = driver.execute_async_script(
        "const [src, done] = arguments; fetch(src).then(r => r.blob()).then(b => {const f = new FileReader();"
        "f.onload = () => done(f.result.split(',')[1]); f.readAsDataURL(b)})", src)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def paint(driver, css, dx=40, dy=0):
    """Drag the brush across the middle of an image editor's canvas."""
    canvas = driver.find_element(By.CSS_SELECTOR, f"{css} canvas")
    ActionChains(driver).move_to_element(canvas).click_and_hold().move_by_offset(dx, dy) \
        .move_by_offset(0, 20).release().perform()


def example(driver, n=0):
    """Click the n-th example of the visible tab."""
    items = [b for b in driver.find_elements(By.CSS_SELECTOR, ".gallery-item, button.gallery, tr.tr-body")
             if b.is_displayed()]
    items[n].click()
    time.sleep(0.5)


def toast(driver, timeout=30):
    return until(driver, lambda d: " ".join(t.text for t in d.find_elements(By.CSS_SELECTOR, ".toast-body")
                                            if t.text), timeout, "an error toast")


def test_classify_draw_and_upload(browser, server, tmp_path):
    open_tab(browser, server, "Classify")
    brush = browser.find_elements(By.CSS_SELECTOR, "#classify-input button[aria-label='Brush'], "
                                                   "#classify-input button[title='Brush']")
    if brush:
        brush[0].click()
    paint(browser, "#classify-input", 0, 60)
    run_and_wait(browser, "#classify-go", "#classify-cam")  # the Grad-CAM overlay
    label = browser.find_element(By.CSS_SELECTOR, "#classify-label").text
    assert any(c in label for c in "0123456789") and "%" in label
    drawn = pixels(browser, srcs(browser, "#classify-original")[0])
    assert drawn.max() > 100, "the stroke reached the model"
    shot(browser, server, tmp_path / "classify-drawn.png")

    example(browser, 3)  # a test image of a 3, uploaded by a click
    run_and_wait(browser, "#classify-go", "#classify-cam")
    seen = pixels(browser, srcs(browser, "#classify-original")[0])
    assert seen.shape[:2] == (28, 28) and not np.array_equal(seen, drawn)
    shot(browser, server, tmp_path / "classify-example.png")


def test_generate_shows_progress_and_errors_clear_the_old_result(browser, server, tmp_path, monkeypatch):
    from recgen.generate import diffusion

    step = diffusion.guided_eps

    def slow_step(*args, **kwargs):  # the server runs in this process: a tiny net made slow enough to watch
        time.sleep(0.02)
        return step(*args, **kwargs)

    monkeypatch.setattr(diffusion, "guided_eps", slow_step)
    open_tab(browser, server, "Generate")
    until(browser, lambda d: "diffusion" in d.find_element(By.CSS_SELECTOR, "#generate-about").text)
    steps = browser.find_element(By.CSS_SELECTOR, "#generate-steps input[type=number]")
    steps.clear()
    steps.send_keys("60\t")
    example(browser, 1)  # class "1", seed 1
    assert browser.find_element(By.CSS_SELECTOR, "#generate-class input").get_attribute("value") == "1"
    click(browser, "#generate-go")
    until(browser, lambda d: "sampling: step" in d.find_element(By.TAG_NAME, "body").text, what="progress")
    until(browser, lambda d: len(images(d, "#generate-gallery")) >= 16, 60, "16 samples")
    captions = browser.find_element(By.CSS_SELECTOR, "#generate-gallery").text.split()
    assert captions.count("1") == 16 and not set(captions) & set("023456789"), "16 samples of the class asked"
    shot(browser, server, tmp_path / "generate.png")

    cls = browser.find_element(By.CSS_SELECTOR, "#generate-class input")
    cls.clear()
    cls.send_keys("cat\t")
    click(browser, "#generate-go")
    assert "unknown class" in toast(browser) or "cat" in toast(browser)
    assert not images(browser, "#generate-gallery"), "the failed request left the previous samples on screen"
    until(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#generate-go").is_enabled(), 10, "the button")
    shot(browser, server, tmp_path / "generate-error.png")


def test_restore_with_a_painted_mask(browser, server, tmp_path):
    open_tab(browser, server, "Restore")
    example(browser, 0)
    brush = browser.find_elements(By.CSS_SELECTOR, "#restore-input button[aria-label='Brush'], "
                                                   "#restore-input button[title='Brush']")
    if brush:
        brush[0].click()
    paint(browser, "#restore-input", 30, 0)
    before, after = (pixels(browser, s) for s in run_and_wait(browser, "#restore-go", "#restore-slider", 2))
    magenta = (before[..., 0] > 200) & (before[..., 1] < 80) & (before[..., 2] > 200)
    assert magenta.any(), "the painted region shows in the before image"
    assert not ((after[..., 0] > 200) & (after[..., 1] < 80)).any()
    table = browser.find_element(By.CSS_SELECTOR, "#restore-table").text
    assert all(m in table for m in ("recgen", "telea", "navier-stokes")), "recgen and the classical baselines"
    run = browser.find_element(By.CSS_SELECTOR, "#restore-run input").get_attribute("value")
    assert run == "restore/inpaint-1", "restorer runs listed before the diffusion generators"
    shot(browser, server, tmp_path / "restore.png")


def test_detect_draws_boxes_and_lists_them(browser, server, tmp_path):
    open_tab(browser, server, "Detect")
    click(browser, "#detect-go")  # nothing uploaded yet: a sentence, not "[object Object]"
    assert "no image" in toast(browser)
    example(browser, 0)
    score = browser.find_element(By.CSS_SELECTOR, "#detect-min-score input[type=number]")
    score.clear()
    score.send_keys("0\t")
    run_and_wait(browser, "#detect-go", "#detect-drawn")
    rows = browser.find_elements(By.CSS_SELECTOR, "#detect-table [role=row]")
    assert len(rows) == 1 + 5, "a header and the run's max_detections boxes at min score 0"
    im = images(browser, "#detect-input")[0]
    assert browser.execute_script("return arguments[0].naturalWidth", im) == 64, "the example shows as given"
    h, w = pixels(browser, srcs(browser, "#detect-drawn")[0]).shape[:2]
    assert h == w >= 64, "the 64x64 scene drawn with its boxes"
    shot(browser, server, tmp_path / "detect.png")


def test_runs_tab_shows_report_and_metric_card(browser, server, tmp_path):
    open_tab(browser, server, "Runs")
    until(browser, lambda d: "accuracy" in d.find_element(By.CSS_SELECTOR, "#runs-card").text,
          what="classify/cnn-1's metric card")
    frame = browser.find_element(By.CSS_SELECTOR, "#runs-report iframe")
    browser.switch_to.frame(frame)
    assert "recgen classify" in browser.find_element(By.TAG_NAME, "h1").text
    widths = [im.get_attribute("naturalWidth") for im in browser.find_elements(By.TAG_NAME, "img")]
    assert any(w not in ("0", None) for w in widths), "the report's plots render inside the frame"
    browser.switch_to.default_content()
    shot(browser, server, tmp_path / "runs.png")


def test_docs_render_offline(browser, server, tmp_path):
    browser.get(f"{server}/docs")
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"), what="Swagger UI's operations")
    assert "/api/classify/predict" in browser.find_element(By.TAG_NAME, "body").text
    shot(browser, server, tmp_path / "docs.png")


def test_editor_value_to_image_and_mask():
    """What the editor sends: the photo as background, the painted strokes as a layer's alpha."""
    photo = np.full((8, 8, 4), 255, np.uint8)
    layer = np.zeros((8, 8, 4), np.uint8)
    layer[2:4, 5:7, 3] = 255
    image, mask = editor_image({"background": photo, "layers": [layer], "composite": photo}, keep_layers=True)
    assert image.shape == (8, 8, 3) and mask.dtype == np.uint8
    assert np.array_equal(mask > 0, layer[..., 3] > 0)
    assert editor_image({"background": photo, "layers": [np.zeros_like(layer)]}, keep_layers=True)[1] is None
    with pytest.raises(Exception, match="no image"):
        editor_image({"background": None, "layers": [], "composite": None})
