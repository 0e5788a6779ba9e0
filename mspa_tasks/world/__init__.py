"""A seeded demo world with known latent structure (see :mod:`mspa_tasks.world.generate`)."""
