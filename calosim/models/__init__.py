"""Model types built from calosim.layers, each implementing the contract of calosim.models.base:
calogan (a package: config, generator, discriminator, model, training, inference), wgan_gp, vae, lagan.
registry names them; files reads and writes model files of any type."""
