"""What a process does before its first Keras call: choose the backend (Keras reads KERAS_BACKEND once, at
import) and import Keras, and TensorFlow where it runs, without their start-up chatter on stderr."""
import importlib.util
import os
import sys


def choose_backend(command):
    """`kerasrnn train` and `demo` take the fastest backend (`fastest_backend`) unless KERAS_BACKEND names
    one. Runs before Keras is imported, which reads the variable once."""
    if command in ("train", "demo") and "KERAS_BACKEND" not in os.environ and fastest_backend():
        os.environ["KERAS_BACKEND"] = fastest_backend()


def fastest_backend():
    """torch where PyTorch is installed on a Linux machine with no GPU: there PyTorch's fused LSTM kernel
    (oneDNN's) trains fastest of the three backends (docs/benchmarks.md, "Training throughput"). None
    elsewhere (Keras's default then)."""
    gpu = any(os.path.exists(device) for device in ("/dev/nvidiactl", "/dev/kfd"))
    if sys.platform.startswith("linux") and not gpu and importlib.util.find_spec("torch"):
        return "torch"
    return None


def import_keras_quietly(tensorflow_too=False):
    """TensorFlow 2.21 writes start-up notices to stderr before any log setting applies; import it (and
    let it probe for devices) with stderr closed, so that an error stays one line. On the other backends it
    is imported only for a command that uses it where it is installed (`tensorflow_too`: training's
    TensorBoard logs, the export stage)."""
    from kerasrnn_edge.runtimes import native_stderr_silenced

    with native_stderr_silenced():
        import keras
        if keras.backend.backend() == "tensorflow" or tensorflow_too and importlib.util.find_spec("tensorflow"):
            import tensorflow as tf
            tf.config.list_physical_devices()
