"""medsyn's built-in models, one package each, registered through the ``medsyn`` entry points."""
