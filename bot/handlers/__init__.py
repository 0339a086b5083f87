"""The edges: thin adapters that parse what arrives, call the desk and render its answer."""
