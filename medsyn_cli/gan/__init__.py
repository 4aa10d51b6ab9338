"""What several GAN model plugins share: networks, initialisation, training-step pieces, schedules."""
