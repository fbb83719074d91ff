"""The browser's data endpoints over the configured stores (`/api/stores/...`): pages of
items with filters and sorting, one item's row with units and its store's provenance,
its image (PNG, thumbnail, one band), the FITS cutout and the FITS row."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from galaxy_hpc.serve import render
from galaxy_hpc.serve.catalog import plain

PNG = "image/png"
FITS = "application/fits"
CACHE = {"Cache-Control": "max-age=3600"}  # an item's pixels never change once finalized


def catalog_router() -> APIRouter:
    router = APIRouter(prefix="/api/stores", tags=["catalog"])

    @router.get("", summary="the stores served, with counts, shapes and columns (units)")
    def stores(request: Request) -> JSONResponse:
        state = request.app.state.serve
        return JSONResponse([state.stores.get(name).summary() for name in state.stores.names()])

    @router.get("/{name}/items", summary="a page of items, filtered and sorted")
    def items(request: Request, name: str, offset: int = Query(0, ge=0),
              limit: int = Query(48, ge=1), sort: str | None = None, desc: bool = False,
              where: list[str] = Query(default=[])) -> JSONResponse:
        state = request.app.state.serve
        if limit > state.cfg.limits.max_page_size:
            raise ValueError(f"limit {limit} is over limits.max_page_size "
                             f"({state.cfg.limits.max_page_size})")
        store = state.stores.get(name)
        total, indices = store.query(where, sort, desc, offset, limit)
        shown = store.summary()["list_columns"]
        if sort and sort not in shown:
            shown = [sort, *shown]
        return JSONResponse({"store": name, "total": total, "offset": offset,
                             "columns": shown, "items": store.rows(indices, shown)})

    @router.get("/{name}/items/{index}", summary="one item: every column with its unit, "
                "and the store's provenance")
    def item(request: Request, name: str, index: int) -> JSONResponse:
        store = request.app.state.serve.stores.get(name)
        row = store.row(index)
        info = store.summary()["columns"]
        columns = [{"name": n, "value": row[n], "unit": info[n].get("unit"),
                    "description": info[n].get("description")} for n in info]
        spec = store.store.spec
        return JSONResponse({"store": name, "index": index, "count": len(store),
                             "image_shape": list(spec.image_shape),
                             "image_dtype": spec.image_dtype, "columns": columns,
                             "provenance": _json_ready(store.store.attrs),
                             "report": store.summary()["report"]})

    @router.get("/{name}/items/{index}/image.png", summary="the image through the store's "
                "stretch (band: one band as grey)", response_class=Response)
    def image(request: Request, name: str, index: int, band: int | None = None) -> Response:
        store = request.app.state.serve.stores.get(name)
        rgb = render.shown(store.images(index), store.stretch, band)[0]
        return Response(render.png_bytes(rgb), media_type=PNG, headers=CACHE)

    @router.get("/{name}/items/{index}/thumb.png", summary="a cached thumbnail",
                response_class=Response)
    def thumb(request: Request, name: str, index: int, band: int | None = None) -> Response:
        state = request.app.state.serve
        store = state.stores.get(name)
        store.check_index(index)
        side = state.cfg.thumbnail_px

        def make() -> bytes:
            return render.png_bytes(render.shown(store.images(index), store.stretch, band)[0],
                                    side=side)

        data = state.thumbnails.get((name, index, band, side), make)
        return Response(data, media_type=PNG, headers=CACHE)

    @router.get("/{name}/items/{index}/cutout.fits", summary="the image as stored, as FITS",
                response_class=Response)
    def cutout(request: Request, name: str, index: int) -> Response:
        store = request.app.state.serve.stores.get(name)
        data = render.fits_cutout(store.images(index)[0], store.row(index), store=name)
        return _download(data, f"{name}-{index}.fits")

    @router.get("/{name}/items/{index}/row.fits", summary="the item's row as a FITS table",
                response_class=Response)
    def row_fits(request: Request, name: str, index: int) -> Response:
        store = request.app.state.serve.stores.get(name)
        data = render.fits_row(store.row(index), store.summary()["columns"])
        return _download(data, f"{name}-{index}-row.fits")

    @router.get("/{name}/report", summary="the store's evaluation report (HTML)")
    def report(request: Request, name: str) -> FileResponse:
        return FileResponse(request.app.state.serve.stores.report_path(name))

    return router


def _download(data: bytes, filename: str) -> Response:
    return Response(data, media_type=FITS,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return plain(value)
