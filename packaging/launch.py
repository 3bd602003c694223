"""The bundle's entry script: the same ``main`` as the ``cxr-desktop`` console script.

A separate file (not ``cxr_desktop/__main__.py``) so that PyInstaller's analysis does not put
the package folder itself on the module search path.
"""

import sys

from cxr_desktop.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
