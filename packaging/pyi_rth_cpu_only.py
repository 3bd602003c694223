"""PyInstaller runtime hook of the CPU-only bundle: torch never sees a GPU.

The CPU-only bundle leaves out the CUDA libraries torch loads only on use (cuDNN's engines,
cuSOLVER), so on a machine with a GPU it must not pick ``cuda``. Runs before the app's code.
"""

import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""
