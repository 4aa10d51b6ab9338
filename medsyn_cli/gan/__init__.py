"""What the two-domain (translation) GANs share: CycleGAN's ResNet generator and PatchGAN
discriminator (``networks``), the linear-decay learning-rate schedule (``schedule``) and the
two-domain training skeleton with its discriminator step (``two_domain``).

``cyclegan`` and ``sag-gan`` both build on these; neither plugin imports the other.
"""
