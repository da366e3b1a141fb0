"""What does learned loss weighting cost per training step? The FT task (seed 000) with a fixed
λ, with uncertainty weighting (one scalar per term: nearly free) and with GradNorm (one extra
gradient per term w.r.t. the backbone's last kernel, from a persistent tape), and Recon + FT with
GradNorm (three terms) — side by side in one run, as ratios to standard training.

    python benchmarks/loss_weighting.py [--backbone resnet8] [--steps 20] [--batch 128] [--quick]
"""

from __future__ import annotations

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

from multitask_cost import main  # noqa: E402

VARIANTS = {
    "standard": "none",
    "FT, fixed λ": "fourier",
    "FT, uncertainty weighting": "fourier~uncertainty",
    "FT, GradNorm": "fourier~gradnorm",
    "Recon + FT, fixed λ": "recon+fourier",
    "Recon + FT, GradNorm": "recon+fourier~gradnorm",
}

if __name__ == "__main__":
    main(VARIANTS, __doc__)
