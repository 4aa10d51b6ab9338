"""Training-step pieces that several GAN models share (the models keep their own update order)."""
