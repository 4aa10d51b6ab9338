"""Parts that several GAN model plugins share (networks, initialisation, sampling helpers)."""
