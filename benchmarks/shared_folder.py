"""Where the benchmarks find the shared folder (tiny-shakespeare, the PyTorch peer): beside the checkout, as the
developers' machines and CI lay it out, or inside it (shared/, ignored by git), as a copy carried to the GPU host."""
import os

from kerasrnn_edge.errors import KerasrnnError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shared(*parts):
    """A path in the shared folder, or the one-line error a clone without it gets."""
    for root in (os.path.join(REPO, "shared"), os.path.join(REPO, "..", "shared")):
        if os.path.isdir(root):
            return os.path.join(root, *parts)
    raise KerasrnnError(f"this benchmark reads shared/{'/'.join(parts)}: put the shared folder (data/tinyshakespeare.txt, "
                        "bench/torch_reference.py) beside the checkout")
