"""The Qt-free core: everything the GUI, the CLI and the tests share.

Nothing under this package may import PySide6, shiboken6 or pyqtgraph (tests/core/test_no_qt.py).
"""
