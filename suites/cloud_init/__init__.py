"""cloud-init: it ran, finished cleanly, used the expected datasource and left no build state."""
