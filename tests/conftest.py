import os

import torch

# Under pytest-xdist every worker gets one intra-op thread, so workers do not compete.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
