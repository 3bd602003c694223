"""The PySide6 desktop app: thin widgets over the core; long work runs in workers."""
