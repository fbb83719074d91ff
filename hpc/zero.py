"""DeepSpeed ZeRO from a typed config: the engine every trainer runs in.

The training loop hands over a module whose forward returns the loss, its
torch optimizer and LR schedule; this module turns a `ZeroConfig` into
DeepSpeed's JSON and builds the engine on the process group hpc.dist started.

Choices, and why:
- The optimizer is a torch optimizer passed in (AdamW), not DeepSpeed's
  config optimizer: DeepSpeed's own Adam JIT-compiles fused_adam (a minute on
  CPU, a CUDA toolchain on GPU nodes), torch's fused AdamW needs nothing.
- `zero_allow_untested_optimizer` is set because of that choice; torch AdamW
  is the most tested optimizer there is.
- fp16 needs loss scaling kernels that exist on CUDA only: on CPU it is an
  error, bf16 and fp32 both work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class ZeroConfig:
    # 0: plain data parallel; 1: optimizer state sharded; 2: + gradients;
    # 3: + parameters (needed when the model alone does not fit one GPU).
    stage: Literal[0, 1, 2, 3] = 2
    precision: Literal["fp32", "bf16", "fp16"] = "bf16"
    gradient_accumulation_steps: int = 1
    gradient_clipping: float = 1.0  # max global grad norm; 0 turns clipping off
    offload_optimizer: bool = False  # optimizer state in CPU memory (stage >= 1)
    offload_params: bool = False  # parameters in CPU memory (stage 3)
    overlap_comm: bool = True
    reduce_bucket_size: int = 200_000_000
    # Stage 3: how many parameters may stay gathered at once, and how soon a gathered
    # one must be used again to be kept. DeepSpeed's defaults (1e9 each) keep all of
    # SD-1.5 gathered through a step: fastest, but then every rank holds the whole
    # model for the step. 1e8 each cut a 2-rank SD-1.5 LoRA's peak per rank from 8.8
    # to 6.7 GB on CPU at the same loss.
    max_live_parameters: int = 1_000_000_000
    max_reuse_distance: int = 1_000_000_000

    def __post_init__(self) -> None:
        if self.gradient_accumulation_steps < 1:
            raise ValueError("gradient_accumulation_steps must be >= 1, "
                             f"got {self.gradient_accumulation_steps}")
        if self.gradient_clipping < 0:
            raise ValueError(f"gradient_clipping must be >= 0, got {self.gradient_clipping}")
        if self.offload_params and self.stage != 3:
            raise ValueError("offload_params needs stage: 3 (only stage 3 partitions parameters)")
        if self.offload_optimizer and self.stage == 0:
            raise ValueError("offload_optimizer needs stage >= 1")


def deepspeed_config(cfg: ZeroConfig, *, micro_batch_size: int, on_gpu: bool) -> dict[str, Any]:
    """The DeepSpeed JSON for this config (also written beside checkpoints for reference)."""
    if cfg.precision == "fp16" and not on_gpu:
        raise ValueError("precision fp16 needs a GPU (loss-scaling kernels are CUDA only); "
                         "use bf16 or fp32 on CPU")
    zero: dict[str, Any] = {"stage": cfg.stage}
    if cfg.stage >= 1:
        zero.update(overlap_comm=cfg.overlap_comm and on_gpu, contiguous_gradients=True,
                    reduce_bucket_size=cfg.reduce_bucket_size)
    if cfg.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": on_gpu}
    if cfg.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": on_gpu}
    if cfg.stage == 3:
        # Lets rank 0 write a consolidated 16-bit model at the end of training.
        zero["stage3_gather_16bit_weights_on_model_save"] = True
        zero["stage3_max_live_parameters"] = cfg.max_live_parameters
        zero["stage3_max_reuse_distance"] = cfg.max_reuse_distance
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,  # the training loop does its own logging
        "wall_clock_breakdown": False,
    }
    if cfg.gradient_clipping > 0:
        config["gradient_clipping"] = cfg.gradient_clipping
    if cfg.precision == "bf16":
        config["bf16"] = {"enabled": True}
    elif cfg.precision == "fp16":
        config["fp16"] = {"enabled": True, "initial_scale_power": 16}
    return config


def use_interpreters_ninja() -> None:
    """Put the ninja installed beside this Python first on PATH, for DeepSpeed's JIT builds.

    DeepSpeed on CPU compiles its shared-memory op once into ~/.cache/torch_extensions,
    and torch builds with whichever `ninja` PATH finds first. The venv's ninja (1.13,
    from PyPI) and Debian's (1.11) hash build commands differently, so processes started
    with and without .venv/bin on PATH (a shell, srun, mpiexec, the test suite) each
    found the other's build stale and recompiled it: 1-4 minutes per training start,
    measured. One ninja for every process that runs this code ends that."""
    import os
    import sys
    from pathlib import Path

    here = Path(sys.executable).parent
    if not (here / "ninja").is_file():
        return
    entries = os.environ.get("PATH", "").split(os.pathsep)
    if not entries or entries[0] != str(here):
        os.environ["PATH"] = os.pathsep.join([str(here), *[e for e in entries if e != str(here)]])


def build_engine(module: Any, *, optimizer: Any, lr_scheduler: Any, cfg: ZeroConfig,
                 micro_batch_size: int) -> Any:
    """deepspeed.initialize on the already-initialised process group."""
    use_interpreters_ninja()
    import deepspeed
    import torch

    config = deepspeed_config(cfg, micro_batch_size=micro_batch_size,
                              on_gpu=torch.cuda.is_available())
    engine, _, _, _ = deepspeed.initialize(model=module, optimizer=optimizer,
                                           lr_scheduler=lr_scheduler, config=config,
                                           dist_init_required=False)
    if cfg.stage == 0 and engine.dp_world_size == 1:
        # Alone, a stage-0 engine still all-reduces every gradient after backward:
        # flattened into buckets, reduced over one rank (an identity), copied back.
        # Measured on the CPU SD shape: a third of the backward pass (bench_train).
        engine.enable_backward_allreduce = False
    return engine


def torch_dtype(precision: str) -> Any:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def gathered_state_dict(module: Any, *, is_main: bool,
                        trainable_only: bool = False) -> dict[str, Any] | None:
    """The whole weights of a ZeRO-3 module as independent CPU tensors on rank 0
    (a collective: every rank calls it; the others get None).

    DeepSpeed's `_zero3_consolidated_16bit_state_dict` keeps `param.detach().cpu()`
    of each gathered parameter. On a CPU rank that is the gather buffer itself, not a
    copy, and DeepSpeed notes that those buffers are reused as layers are gathered:
    an export made from it could hold weights other than the ones gathered (a swapped-in
    EMA among them). Here each layer is gathered in turn and rank 0 copies it out.
    `trainable_only`: only parameters that require gradients (and no buffers), for an
    export that needs nothing else (a LoRA)."""
    import deepspeed
    import torch

    state: dict[str, Any] = {}
    seen: dict[int, str] = {}  # shared parameters stay one tensor (ds_id is unique)

    def visit(part: torch.nn.Module, prefix: str) -> None:
        params = [p for p in part.parameters(recurse=False)
                  if p.requires_grad or not trainable_only]
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None, enabled=bool(params)):
            if is_main:
                for name, param in part.named_parameters(recurse=False):
                    if trainable_only and not param.requires_grad:
                        continue
                    ident = getattr(param, "ds_id", id(param))
                    if ident in seen:
                        state[prefix + name] = state[seen[ident]]
                    else:
                        state[prefix + name] = param.detach().to("cpu", copy=True)
                        seen[ident] = prefix + name
                for name, buffer in part.named_buffers(recurse=False):
                    if trainable_only:
                        break
                    if buffer is not None and name not in part._non_persistent_buffers_set:
                        state[prefix + name] = buffer.detach().to("cpu", copy=True)
        for name, child in part.named_children():
            visit(child, prefix + name + ".")

    visit(module, "")
    return state if is_main else None


def regather_available(params: list[Any]) -> None:
    """Refresh the whole copies of ZeRO-3 parameters that are held gathered (a collective).

    ZeRO-3 keeps small parameters whole on every rank between steps ("persistent":
    under `stage3_param_persistence_threshold` elements, which is every parameter of a
    tiny model and the norms and biases of a large one). A forward pass uses those
    whole copies without gathering, so writing new values into the partitions
    (`ds_tensor`, as an EMA swap does) does not reach them. Releasing them (their
    partitions are up to date, so nothing is written back) and gathering again does."""
    held = [p for p in params if hasattr(p, "ds_tensor")
            and getattr(getattr(p, "ds_status", None), "name", "") == "AVAILABLE"]
    if held:
        held[0].partition(param_list=held)
        held[0].all_gather(param_list=held)


@dataclass(frozen=True)
class PartitionedBuild:
    """How a model is built under ZeRO-3 so that no rank ever holds it whole.

    Modules created inside `context()` have their parameters partitioned as each
    submodule is made (deepspeed.zero.Init with the engine's own config); `load()` then
    fills such a module from a saved folder's safetensors, each rank copying only its
    own slice of each tensor, read one tensor at a time. Built whole, SD-1.5's UNet
    (860 M parameters, 3.4 GB in float32) sat on every rank before DeepSpeed
    partitioned it, and a freed heap is not always given back."""
    config: dict[str, Any]

    def context(self) -> Any:
        import deepspeed

        return deepspeed.zero.Init(config_dict_or_path=self.config)

    def load(self, module: Any, folder: Any) -> None:
        load_partitioned(module, folder)


def partitioned_build(cfg: ZeroConfig, *, micro_batch_size: int) -> PartitionedBuild | None:
    """The build a training job's families use: partitioned under stage 3, else None."""
    import torch

    if cfg.stage != 3:
        return None
    return PartitionedBuild(deepspeed_config(cfg, micro_batch_size=micro_batch_size,
                                             on_gpu=torch.cuda.is_available()))


def load_partitioned(module: Any, folder: Any) -> None:
    """Fill a module made under zero.Init from the safetensors files of `folder` (a
    diffusers/transformers module folder): each rank copies its slice of each tensor
    into its partition (`ds_tensor`: a contiguous piece of the flattened tensor, the
    last one padded). Names must match the module's state dict, as save_pretrained
    writes them."""
    from pathlib import Path

    import torch
    import torch.distributed as dist
    from safetensors import safe_open

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no .safetensors weights to load")
    readers = [safe_open(str(file), framework="pt") for file in files]
    where = {key: reader for reader in readers for key in reader.keys()}
    missing = []
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name not in where:
                missing.append(name)
                continue
            tensor = where[name].get_tensor(name)
            if hasattr(param, "ds_tensor"):
                part = param.ds_tensor
                if tuple(tensor.shape) != tuple(param.ds_shape):
                    raise ValueError(f"{folder}: {name} has shape {tuple(tensor.shape)}, the "
                                     f"model {tuple(param.ds_shape)}")
                start = dist.get_rank(group=param.ds_process_group) * part.numel()
                piece = tensor.flatten()[start:start + part.numel()]
                part.view(-1)[:piece.numel()].copy_(piece)
                part.view(-1)[piece.numel():].zero_()
            else:
                param.copy_(tensor)
        for name, buffer in module.named_buffers():
            if name in where:
                buffer.copy_(where[name].get_tensor(name))
    if missing:
        raise ValueError(f"{folder}: no weights for {len(missing)} parameter(s) of the model, "
                         f"e.g. {', '.join(missing[:3])}: is it the right folder?")
    regather_available(list(module.parameters()))


def expected_state_bytes(*, trainable: int, frozen: int, precision: str, stage: int,
                         world_size: int, ema: bool) -> int:
    """Bytes of model state one rank should hold under ZeRO `stage` with AdamW: the
    module's parameters in the training precision, float32 master weights and gradients,
    Adam's two moments, and an EMA's float32 shadow; each divided over the ranks where
    the stage partitions it (1: optimizer state, 2: + gradients, 3: + parameters).
    Activations, frozen parts outside the module (a VAE) and the framework are not in it."""
    width = 2 if precision in ("bf16", "fp16") else 4

    def split(count: float, from_stage: int) -> float:
        return count / world_size if stage >= from_stage else count

    total = split((trainable + frozen) * width, 3)
    total += split(trainable * 4, 1) + split(trainable * 8, 1)  # master weights, Adam
    total += split(trainable * 4, 2)  # gradients
    if ema:
        total += split(trainable * 4, 3)
    return int(total)
