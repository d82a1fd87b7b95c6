"""Training of the two-branch generator (paper supplementary 2) with ``accelerate``.

What is trained: the reference U-Net, the denoising U-Net and the pose guider (or, with ``lora``,
low-rank adapters of the U-Nets' attention projections plus the pose guider). What is frozen: the VAE
and the identity encoder (the CLIP image encoder, or the one a continued generator holds, e.g.
Pose2ID's TransReID + IFR), which reads references with its own ``preprocessor``. Loss: mean squared
error between the true and the predicted noise at a uniformly drawn timestep (the scheduler's ``prediction_type`` ``v_prediction`` switches the target to
the velocity); ``diffusion`` in the config adds a noise offset, min-SNR weights and changes to the
noise schedule (zero terminal SNR, velocity targets, trailing timesteps for the saved generator).
Optimiser: AdamW, lr 1e-5, weight decay 0.01 (paper 4.1).

Each step: encode target and reference with the frozen VAE (and the reference with the identity
encoder), noise the target latents, and run the model step the pipeline runs at inference
(:class:`~posedive.generation.models.two_branch.TwoBranchModel`): the reference U-Net at t=0 writing
the bank, the pose guider's features added after ``conv_in``, the denoising U-Net reading the bank. A
fraction of samples (``data.reference_drop_prob``) drops the reference tokens and replaces the
identity tokens by the encoder's unconditional ones (zeros for CLIP), which teaches the unconditional
branch that classifier-free guidance needs at inference.

Checkpoints (``OUTPUT/checkpoints/step-NNNNNNN``, accelerate state plus the step) are written every
``checkpoint_every`` steps; a rerun of the same command resumes from the newest one. The result is a
``PoseDivePipeline`` folder ``OUTPUT/generator`` whose pose guider config holds the condition
contract it was trained on, with ``posedive_generator.json`` describing it.

Modules: :mod:`.components` (building and loading the parts), :mod:`.continued` (the generator a run
continues), :mod:`.dataset` (pairs as tensors, encoding, samplers), :mod:`.draws` (each step's noise,
timesteps and dropout), :mod:`.schedule` (the noise schedule and min-SNR weights), :mod:`.loss`,
:mod:`.vae` (pre-training a scratch VAE), :mod:`.checkpoints`, and :mod:`.trainer` (setup, step, save).
"""

from .trainer import Trainer, TrainingResult, train_generator

__all__ = ["Trainer", "TrainingResult", "train_generator"]
