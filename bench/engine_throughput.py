"""Training throughput of dskd's engine step for KD and DSKD, on synthetic CIFAR-shaped batches.

Times exactly what the engine does per step (data slice + batched augmentation on the device,
distiller forward with the frozen teacher, backward, SGD step) for resnet32x4 → resnet8x4 at
batch 64, and prints images/s and the projected minutes per 240-epoch CIFAR-100 run (50,000
images per epoch). The fast-path work (bf16, CUDA graphs, compile) is measured against these
numbers.

    python bench/engine_throughput.py                 # the device from DSKD_DEVICE / auto
    python bench/engine_throughput.py --small         # CPU-sized: resnet8 → resnet8, fewer steps
"""

from __future__ import annotations

import argparse
import time

import torch

from dskd_core.config import resolve_run_config
from dskd_core.data import BatchLoader, TensorDataset, get_dataset_spec
from dskd_core.methods import get_method
from dskd_core.models import create_model
from dskd_core.train.build import resolve_device

CIFAR_TRAIN_IMAGES = 50_000


def measure(variant: dict, teacher: str, student: str, batch: int, steps: int, device: torch.device) -> float:
    cfg = resolve_run_config(method="kd", teacher=teacher, student=student, dataset="cifar100", flags=variant)
    torch.manual_seed(0)
    distiller = get_method("kd")(create_model(student), create_model(teacher), cfg).to(device)
    optimizer = torch.optim.SGD(list(distiller.trainable_parameters()), lr=0.05, momentum=0.9, weight_decay=5e-4)
    n = batch * (steps + 5)
    data = TensorDataset(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 100, (n,)))
    loader = BatchLoader(data, get_dataset_spec("cifar100"), batch, train=True, device=device)
    distiller.train()
    start = None
    for i, b in enumerate(loader):
        if i == 5:  # warm-up steps excluded
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        _, terms = distiller(b, 1)
        loss = torch.stack(list(terms.values())).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    assert start is not None
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--small", action="store_true", help="resnet8 → resnet8 and 10 steps (CPU)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    teacher, student = ("resnet8", "resnet8") if args.small else ("resnet32x4", "resnet8x4")
    steps = args.steps or (10 if args.small else 200)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}, {teacher} → {student}, batch 64, {steps} timed steps")
    print(f"{'variant':<22}{'img/s':>10}{'min / 240 ep':>16}")
    for label, variant in (("KD", {}), ("DSKD (sdd[1,2,4]+ls)", {"scales": [1, 2, 4], "stand": True})):
        rate = measure(variant, teacher, student, 64, steps, device)
        print(f"{label:<22}{rate:>10.0f}{240 * CIFAR_TRAIN_IMAGES / rate / 60:>16.1f}")


if __name__ == "__main__":
    main()
