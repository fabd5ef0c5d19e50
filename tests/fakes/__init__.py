"""Emulators the framework's own tests run the cloud providers against, all on 127.0.0.0/8."""
