"""The HTTP API of `galaxy-hpc serve` with a real FastAPI app (httpx TestClient): catalog
pages, objects and downloads over Zarr and HDF5 stores, /infer from a tiny model, and
every bad input answered with a 4xx and one line while the server stays up."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from serve_helpers import NUM_RGB, serve_config


@pytest.fixture(scope="module")
def client(serve_stores, serve_models):
    from galaxy_hpc.serve.app import create_app

    cfg = serve_config(serve_stores, model={"kind": "gan", "path": str(serve_models["gan"])},
                       limits={"max_n": 4, "max_steps": 20, "max_size": 64,
                               "max_body_bytes": 2048, "max_page_size": 50})
    with TestClient(create_app(cfg)) as test_client:
        yield test_client


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_health_stores_and_pages(client, serve_stores):
    from hpc.store import open_store

    assert client.get("/health").json()["stores"] == ["rgb", "flux"]
    stores = {s["name"]: s for s in client.get("/api/stores").json()}
    assert stores["rgb"]["count"] == NUM_RGB and stores["flux"]["backend"] == "hdf5"
    assert stores["flux"]["image_dtype"] == "float32"
    page = client.get("/api/stores/rgb/items", params={"offset": 24, "limit": 24}).json()
    assert page["total"] == NUM_RGB and [i["index"] for i in page["items"]] == list(range(24, 30))
    # A filter and a sort agree with the store's own column.
    store = open_store(serve_stores["rgb"])
    smooth = store.read_column("t01_smooth_or_features_a01_smooth_fraction")
    page = client.get("/api/stores/rgb/items", params={
        "where": "t01_smooth_or_features_a01_smooth_fraction>0.5", "limit": 50,
        "sort": "t01_smooth_or_features_a01_smooth_fraction", "desc": "true"}).json()
    expected = np.flatnonzero(smooth > 0.5)
    assert page["total"] == len(expected)
    values = [i["t01_smooth_or_features_a01_smooth_fraction"] for i in page["items"]]
    assert values == sorted(values, reverse=True) and min(values) > 0.5
    captions = [str(c) for c in store.read_column("caption")]
    tag = "spiral"
    page = client.get("/api/stores/rgb/items", params={"where": f"caption~{tag}"}).json()
    assert page["total"] == sum(tag in c for c in captions)
    # A condition as `galaxy-hpc select --where` takes it: the rows a select would write.
    condition = ("t01_smooth_or_features_a01_smooth_fraction <= 0.5 and "
                 "contains(caption, 'SPIRAL')")
    page = client.get("/api/stores/rgb/items", params={"where": condition}).json()
    assert page["total"] == sum(tag in c and f <= 0.5 for c, f in zip(captions, smooth,
                                                                     strict=True))


def test_object_images_and_downloads(client, serve_stores):
    from astropy.io import fits

    from hpc.store import open_store

    item = client.get("/api/stores/flux/items/3").json()
    units = {c["name"]: c["unit"] for c in item["columns"]}
    assert item["image_shape"] == [4, 32, 32] and "provenance" in item and units
    store = open_store(serve_stores["flux"])
    with fits.open(io.BytesIO(client.get("/api/stores/flux/items/3/cutout.fits").content)) as f:
        np.testing.assert_array_equal(f[0].data, store.read_images(3, 4)[0])
    with fits.open(io.BytesIO(client.get("/api/stores/flux/items/3/row.fits").content)) as f:
        assert len(f[1].data) == 1 and "caption" in f[1].columns.names
        assert f[1].columns["flux_g"].unit == units["flux_g"] == "nanomaggy"
    colour = _png(client.get("/api/stores/flux/items/3/image.png").content)
    band = _png(client.get("/api/stores/flux/items/3/image.png?band=1").content)
    assert colour.shape == (32, 32, 3) and colour.std() > 0
    assert (band[..., 0] == band[..., 1]).all()  # one band: grey
    thumb = client.get("/api/stores/rgb/items/5/thumb.png")
    assert _png(thumb.content).shape == (96, 96, 3)
    rgb = open_store(serve_stores["rgb"]).read_images(5, 6)[0].transpose(1, 2, 0)
    np.testing.assert_array_equal(_png(client.get("/api/stores/rgb/items/5/image.png").content),
                                  rgb)
    client.get("/api/stores/rgb/items/5/thumb.png")
    assert client.get("/metrics-lite").json()["thumbnails"]["hits"] >= 1


def test_infer_png_and_base64_match_the_model(client, serve_models):
    from galaxy_hpc.generate.config import RuntimeSection
    from galaxy_hpc.generate.ondemand import DrawRequest, load_ondemand, model_section_for

    conditions = {"redshift": 0.1, "log_stellar_mass": 10.5}
    response = client.post("/infer", json={"conditions": conditions, "n": 2, "seed": 9})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert _png(response.content).shape == (32, 64, 3)
    out = client.post("/infer", json={"conditions": conditions, "n": 2, "seed": 9,
                                      "format": "base64"}).json()
    model = load_ondemand(model_section_for(str(serve_models["gan"])), None,
                          RuntimeSection(device="cpu", cpu_threads=1))
    [drawn] = model.draw([DrawRequest(n=2, seed=9, conditions=conditions)])
    assert out["seeds"] == [int(s) for s in drawn.seeds]
    first = _png(base64.b64decode(out["images"][0]))
    np.testing.assert_array_equal(first, drawn.display[0].transpose(1, 2, 0))
    metrics = client.get("/metrics-lite").json()
    assert metrics["images"] >= 4 and metrics["latency_ms"]["infer"]["count"] >= 2


BAD = [
    ("post", "/infer", {"content": b'{"n": 2,', "headers": {"content-type": "application/json"}},
     400, "malformed JSON"),
    ("post", "/infer", {"json": {"conditions": {"redshift": 0.1, "log_stellar_mass": 1},
                                 "n": 99}}, 400, "n must be in 1..4"),
    ("post", "/infer", {"json": {"conditions": {"redshift": 0.1}, "n": 1}}, 400, "missing"),
    ("post", "/infer", {"json": {"prompt": "a spiral", "n": 1}}, 400, "prompt"),
    ("post", "/infer", {"json": {"conditions": {"redshift": 0.1, "log_stellar_mass": 1},
                                 "steps": 500}}, 400, "steps must be in 1..20"),
    ("post", "/infer", {"json": {"conditions": {"redshift": 0.1, "log_stellar_mass": 1},
                                 "size": 4096}}, 400, "size must be in 8..64"),
    ("post", "/infer", {"json": {"n": "two"}}, 422, "n:"),
    ("post", "/infer", {"json": {"bogus": 1}}, 422, "bogus"),
    ("post", "/infer", {"json": {"prompt": "x" * 5000}}, 413, "over 2048 bytes"),
    ("post", "/infer", {"json": {"conditions": {"redshift": 0.1, "log_stellar_mass": 1},
                                 "init": {"store": "rgb", "index": 0}}}, 400, "img2img"),
    ("get", "/api/stores/nope/items", {}, 404, "no store 'nope'"),
    ("get", "/api/stores/rgb/items/999", {}, 404, "items 0..29"),
    ("get", "/api/stores/rgb/items/-1/thumb.png", {}, 404, "items 0..29"),
    ("get", "/api/stores/rgb/items/abc", {}, 422, "index"),
    ("get", "/api/stores/%2e%2e/items", {}, 400, "only letters"),
    ("get", "/api/stores/..%5C..%5Cetc/items", {}, 400, "only letters"),
    ("get", "/api/stores/..%2F..%2Fetc/items", {}, 404, "not found"),
    ("get", "/api/stores/rgb%2F..%2Fflux/items/0", {}, 404, "not found"),
    ("get", "/static/..%2F..%2Fconfig.py", {}, 404, "not found"),
    ("get", "/api/stores/rgb/items?limit=500", {}, 400, "max_page_size"),
    ("get", "/api/stores/rgb/items?where=redshift", {}, 400, "COLUMN OP VALUE"),
    ("get", "/api/stores/rgb/items?where=caption<3", {}, 400, "is text"),
    ("get", "/api/stores/rgb/items?where=nope>3", {}, 400, "no column 'nope'"),
    ("get", "/api/stores/rgb/items/0/image.png?band=7", {}, 400, "band 7"),
    ("get", "/api/stores/rgb/report", {}, 404, "no evaluation report"),
]


@pytest.mark.parametrize("method,path,kwargs,status,message", BAD,
                         ids=[f"{m} {p[:40]} {s}" for m, p, _, s, _ in BAD])
def test_bad_input_is_one_line_4xx(client, method, path, kwargs, status, message):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error and "\n" not in error
    assert client.get("/health").status_code == 200  # still up


def test_openapi_is_local(client):
    spec = client.get("/openapi.json").json()
    assert {"/infer", "/health", "/metrics-lite", "/api/stores/{name}/items"} <= set(spec["paths"])
    docs = client.get("/docs").text
    assert "cdn" not in docs.lower() and "/static/docs.js" in docs
    assert client.get("/static/docs.js").status_code == 200


def test_rate_limits_answer_429_with_retry_after(serve_stores):
    from galaxy_hpc.serve.app import create_app

    cfg = serve_config(serve_stores, rate={"per_client": "5/minute"})
    with TestClient(create_app(cfg)) as client:
        codes = [client.get("/api/stores").status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
        over = client.get("/api/stores")
        assert int(over.headers["Retry-After"]) >= 1 and "5 per 1 minute" in over.json()["error"]
        assert client.get("/health").status_code == 200  # a liveness probe is never limited
    cfg = serve_config(serve_stores).with_environment({"GALAXY_HPC_SERVE_RATE_OVERALL": "3/minute"})
    with TestClient(create_app(cfg)) as client:
        assert [client.get("/api/stores").status_code for _ in range(4)][-1] == 429


def test_token(serve_stores):
    from galaxy_hpc.serve.app import create_app

    cfg = serve_config(serve_stores, token="s3cret")
    with TestClient(create_app(cfg)) as client:
        assert client.get("/api/stores").status_code == 401
        assert client.get("/api/stores", headers={"Authorization": "Bearer s3cret"}).is_success
        assert client.get("/?token=s3cret").status_code == 200  # sets the cookie
        assert client.get("/api/stores").status_code == 200


def test_sd_img2img_and_exact_draws(serve_stores, serve_models):
    from galaxy_hpc.serve.app import create_app

    cfg = serve_config(serve_stores, model={"kind": "sd", "path": str(serve_models["sd"])})
    with TestClient(create_app(cfg)) as client:
        bad = client.post("/infer", json={"prompt": "a ring galaxy",
                                          "init": {"store": "flux", "index": 0}})
        assert bad.status_code == 400 and "RGB (uint8, 3 bands)" in bad.json()["error"]
        good = client.post("/infer", json={"prompt": "a ring galaxy", "n": 2, "strength": 0.5,
                                           "init": {"store": "rgb", "index": 0}})
        assert good.status_code == 200 and _png(good.content).shape == (32, 64, 3)
        # exact: drawn alone, the bytes of the model's own draw (which test_ondemand shows
        # are a catalog's).
        from galaxy_hpc.generate.config import RuntimeSection, SamplerSection
        from galaxy_hpc.generate.ondemand import DrawRequest, load_ondemand

        out = client.post("/infer", json={"prompt": "a ring galaxy", "n": 2, "seed": 5,
                                          "exact": True, "format": "base64"}).json()
        model = load_ondemand(cfg.model, SamplerSection(name="ddim", steps=2, guidance_scale=2.0),
                              RuntimeSection(device="cpu", cpu_threads=1))
        [drawn] = model.draw([DrawRequest(n=2, seed=5, prompt="a ring galaxy")])
        for k in range(2):
            np.testing.assert_array_equal(_png(base64.b64decode(out["images"][k])),
                                          drawn.display[k].transpose(1, 2, 0))


def test_paging_reads_only_the_page(serve_stores):
    """Pages, objects and thumbnails read their items' shards, never a whole column."""
    from galaxy_hpc.serve.app import create_app

    with TestClient(create_app(serve_config(serve_stores))) as client:
        assert client.get("/api/stores/rgb/items", params={"offset": 8, "limit": 8}).is_success
        assert client.get("/api/stores/rgb/items/9").is_success
        assert client.get("/api/stores/rgb/items/10/thumb.png").is_success
        store = client.app.state.serve.stores.get("rgb")
        assert store._columns == {}  # no whole column was read
        assert {start for _, start in store._blocks} == {8}  # the shard of items 8..15


def test_per_session_limit(serve_stores):
    from galaxy_hpc.serve.app import create_app

    cfg = serve_config(serve_stores, rate={"per_session": "3/minute"})
    with TestClient(create_app(cfg)) as client:
        assert client.get("/").status_code == 200  # the page gives the browser its session
        assert "ghpc_session" in client.cookies
        codes = [client.get("/api/stores").status_code for _ in range(3)]
        assert codes == [200, 200, 429]  # the page itself was the session's first request
        assert "per session" in client.get("/api/stores").json()["error"]
        client.cookies.clear()  # a script without the cookie is limited per client only
        assert client.get("/api/stores").status_code == 200
