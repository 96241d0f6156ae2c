"""Every registered model gives the same eval-mode logits and SDD region logits on CUDA as on CPU.

Run on a GPU machine (fp32, TF32 off); prints the largest relative difference per model.
"""

from __future__ import annotations

import torch

from dskd_core.models import create_model, list_models
from dskd_core.sdd import multiscale_logits


def main() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda")
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    worst = 0.0
    for name in list_models():
        torch.manual_seed(0)
        model = create_model(name).eval()
        with torch.no_grad():
            logits, feats = model(x)
            regions = multiscale_logits(feats["final_map"], model.get_classifier(), (1, 2, 4))
            model.to(device)
            logits_gpu, feats_gpu = model(x.to(device))
            regions_gpu = multiscale_logits(feats_gpu["final_map"], model.get_classifier(), (1, 2, 4))
        rel = max(
            float((a.cpu() - b).abs().max() / b.abs().max().clamp_min(1e-12))
            for a, b in ((logits_gpu, logits), (regions_gpu, regions))
        )
        worst = max(worst, rel)
        print(f"{name:<12} logits {tuple(logits.shape)} regions {tuple(regions.shape)} max rel diff {rel:.2e}")
    print(f"worst {worst:.2e} -> {'OK' if worst < 1e-4 else 'MISMATCH'}")


if __name__ == "__main__":
    main()
