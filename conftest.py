"""From a checkout, `pytest --provider=… --image=…` works without installing the plugin first."""

from importlib.metadata import entry_points

if not any(ep.name == "debian_cloud_tests" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["debian_cloud_tests.plugin"]
