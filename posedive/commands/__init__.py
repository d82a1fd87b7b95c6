"""One module per ``posedive`` verb; each exposes ``register(app)`` (see ``posedive.cli``)."""
