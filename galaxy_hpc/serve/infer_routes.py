"""Generation on demand: `POST /infer` (JSON in; a PNG, or base64 PNGs in JSON, out),
`GET /api/models` (what each configured model takes), through the batching queue."""

from __future__ import annotations

import asyncio
import base64
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from galaxy_hpc.generate.ondemand import DrawRequest
from galaxy_hpc.serve import render
from galaxy_hpc.serve.catalog import NotFound

MAX_PROMPT = 1000  # characters: CLIP reads 77 tokens anyway
MAX_SEED = 2 ** 63 - 1


class InitImage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store: str
    index: int


class InferBody(BaseModel):
    """One request: n images of a prompt (text models) or conditions (vector models)."""

    model_config = ConfigDict(extra="forbid")
    prompt: str | None = None
    negative_prompt: str = ""
    conditions: dict[str, float] | None = None
    n: int = 1
    seed: int = 0
    start: int = 0  # image k is object start + k of a catalog with this seed
    steps: int | None = None
    guidance_scale: float | None = None
    size: int | None = None
    init: InitImage | None = None  # img2img from a store item
    strength: float = 0.6
    model: Literal["model", "base"] = "model"
    format: Literal["png", "base64"] = "png"
    # Drawn alone, not batched with other clients' requests: the bytes `galaxy-hpc
    # sample` and a catalog batch of these rows give (batched: the same galaxies, up to
    # the last bits of a pixel).
    exact: bool = False


def infer_router() -> APIRouter:
    router = APIRouter(tags=["generation"])

    @router.get("/api/models", summary="the models /infer draws from and what they take")
    def models(request: Request) -> JSONResponse:
        state = request.app.state.serve
        return JSONResponse({name: queue.model.describe() for name, queue in state.queues.items()})

    @router.post("/infer", summary="draw n images; PNG (side by side) or base64 JSON",
                 responses={200: {"content": {"image/png": {}}}})
    async def infer(request: Request, body: InferBody) -> Response:
        state = request.app.state.serve
        if body.model not in state.queues:
            raise NotFound(f"model {body.model!r} is not served (served: "
                           f"{', '.join(state.queues) or 'none'})")
        draw = _checked(body, state)
        loop = asyncio.get_running_loop()
        started = loop.time()
        future = state.queues[body.model].submit(draw)
        drawn = await asyncio.wrap_future(future)
        seconds = loop.time() - started
        seeds = [int(s) for s in drawn.seeds]
        if body.format == "base64":
            images = [base64.b64encode(render.png_bytes(rgb)).decode() for rgb in drawn.display]
            return JSONResponse({"images": images, "seeds": seeds, "model": body.model,
                                 "shape": list(drawn.images.shape[1:]),
                                 "seconds": round(seconds, 4)})
        return Response(render.grid_png(drawn.display), media_type="image/png",
                        headers={"X-Seeds": ",".join(map(str, seeds))})

    return router


def _checked(body: InferBody, state: object) -> DrawRequest:
    """The request as the model takes it, or ValueError naming the field over a limit."""
    limits = state.cfg.limits  # type: ignore[attr-defined]
    if not 1 <= body.n <= limits.max_n:
        raise ValueError(f"n must be in 1..{limits.max_n}, got {body.n}")
    if body.steps is not None and not 1 <= body.steps <= limits.max_steps:
        raise ValueError(f"steps must be in 1..{limits.max_steps}, got {body.steps}")
    if body.size is not None and not 8 <= body.size <= limits.max_size:
        raise ValueError(f"size must be in 8..{limits.max_size}, got {body.size}")
    if body.guidance_scale is not None and not 1 <= body.guidance_scale <= 30:
        raise ValueError(f"guidance_scale must be in 1..30, got {body.guidance_scale}")
    if not 0 <= body.seed <= MAX_SEED or not 0 <= body.start <= MAX_SEED - body.n:
        raise ValueError(f"seed and start must be in 0..{MAX_SEED}")
    if body.prompt is not None and len(body.prompt) > MAX_PROMPT:
        raise ValueError(f"prompt is over {MAX_PROMPT} characters")
    init = None
    if body.init is not None:
        init = state.stores.get(body.init.store).images(body.init.index)[0]  # type: ignore
    return DrawRequest(n=body.n, seed=body.seed, start=body.start, prompt=body.prompt,
                       negative_prompt=body.negative_prompt, conditions=body.conditions,
                       steps=body.steps, guidance_scale=body.guidance_scale, size=body.size,
                       init_image=init, strength=body.strength, alone=body.exact)
