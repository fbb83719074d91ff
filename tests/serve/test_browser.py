"""The catalog browser in a real browser: headless Chromium (Debian's, driven by
playwright) loads the page over a synthetic store served by uvicorn, pages, filters,
shows a second store beside it, opens an object, draws galaxies from a tiny SD + LoRA
beside its base, and starts an img2img from the object; each step's screenshot is saved
and checked."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from serve_helpers import NUM_RGB, LiveServer, serve_config

PAGE = 24  # thumbnails a page (the page's script)


def _checked_screenshot(page, path, *, min_std=8.0) -> np.ndarray:
    page.screenshot(path=str(path), full_page=True)
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    assert pixels.std() > min_std, f"{path.name} is blank"
    return pixels


def _loaded_images(page, selector) -> list[int]:
    """naturalWidth of every image matching selector once all have loaded."""
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(i => i.complete && i.naturalWidth > 0)",
        arg=selector, timeout=60_000)
    return page.eval_on_selector_all(selector, "imgs => imgs.map(i => i.naturalWidth)")


@pytest.fixture(scope="module")
def live(serve_stores, serve_models):
    from galaxy_hpc.serve.app import create_app

    cfg = serve_config(serve_stores,
                       model={"kind": "sd_lora", "path": str(serve_models["lora"]),
                              "base": str(serve_models["sd"])},
                       base_model={"kind": "sd", "path": str(serve_models["sd"])})
    with LiveServer(create_app(cfg)) as server:
        yield server


def test_browse_filter_open_and_generate(live, chromium, serve_stores, tmp_path):
    from playwright.sync_api import sync_playwright

    from hpc.store import open_store

    captions = [str(c) for c in open_store(serve_stores["rgb"]).read_column("caption")]
    spirals = sum("spiral" in c for c in captions)
    flux_spirals = sum("spiral" in str(c)
                       for c in open_store(serve_stores["flux"]).read_column("caption"))
    assert 0 < flux_spirals <= PAGE
    assert 0 < spirals < NUM_RGB
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(live.url + "/")
            # First page: PAGE thumbnails, each rendered by the server at 96 px.
            page.wait_for_function(f"document.querySelectorAll('#grid img.thumb').length == {PAGE}")
            assert _loaded_images(page, "#grid img.thumb") == [96] * PAGE
            _checked_screenshot(page, shots / "1-grid.png")
            # Next page: the rest of the store.
            page.click("#next")
            page.wait_for_function(
                f"document.querySelectorAll('#grid img.thumb').length == {NUM_RGB - PAGE}")
            assert "page 2 of 2" in page.inner_text("#page")
            _loaded_images(page, "#grid img.thumb")
            _checked_screenshot(page, shots / "2-next-page.png")
            # A caption filter: the store's own count of spirals.
            page.fill("#where", "caption~spiral")
            page.click("#apply")
            page.wait_for_function(f"document.getElementById('page').textContent"
                                   f".includes('({spirals} items)')")
            assert page.locator("#grid img.thumb").count() == min(spirals, PAGE)
            _loaded_images(page, "#grid img.thumb")
            _checked_screenshot(page, shots / "3-filtered.png")
            # The flux store beside it, under the same filter (real vs generated, matched
            # by a caption tag).
            page.select_option("#compare", "flux")
            page.wait_for_function("document.querySelectorAll('#compare-grid img.thumb')"
                                   f".length == {flux_spirals}")
            _loaded_images(page, "#compare-grid img.thumb")
            _checked_screenshot(page, shots / "3b-beside.png")
            # Open the first spiral: its image, every column with units, downloads.
            page.click("#grid .tile >> nth=0")
            page.wait_for_selector("#object:not([hidden])")
            assert _loaded_images(page, "#object-image") == [32]
            rows = page.locator("#columns tr").count()
            assert rows == len(open_store(serve_stores["rgb"]).columns)
            assert page.get_attribute("#dl-cutout", "href").endswith("/cutout.fits")
            _checked_screenshot(page, shots / "4-object.png")
            # Draw 2 galaxies from the LoRA beside its base.
            page.fill("#gen-prompt", "sdss, spiral galaxy, merger")
            page.fill("#gen-n", "2")
            page.click("#gen-run")
            page.wait_for_function("document.getElementById('gen-status').textContent == 'done'",
                                   timeout=120_000)
            assert _loaded_images(page, "#results img.generated") == [32] * 4  # base + LoRA
            _checked_screenshot(page, shots / "5-generated.png")
            # img2img from the open object.
            page.click("#use-init")
            page.click("#gen-run")
            page.wait_for_function("document.getElementById('gen-status').textContent == 'done'",
                                   timeout=120_000)
            assert len(_loaded_images(page, "#results img.generated")) == 4
            _checked_screenshot(page, shots / "6-img2img.png")
            assert errors == []
        finally:
            browser.close()
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-grid.png", "2-next-page.png", "3-filtered.png", "3b-beside.png", "4-object.png",
        "5-generated.png", "6-img2img.png"]
