"""Build verification: the image boots and is configured right."""
