"""Every private attribute of Keras, PyTorch and JAX that kerasrnn uses, named once, here.

Each belongs to a fast path (`PRIVATE`). The first time a fast path is asked for (`enabled`), its
attributes are looked up and its probe (beside the fast path's code) checks on small inputs that they
still behave as kerasrnn expects;
if one is missing or misbehaves, that fast path is off for the process, said in one warning line on
stderr, and the code takes the public path it falls back to: a release that renames or changes one of
them slows kerasrnn down, never crashes it or changes its results. Nothing here imports a backend before
its fast path is asked for (TensorFlow and triton must not share a process, README)."""
import dataclasses
import importlib
import sys


@dataclasses.dataclass(frozen=True)
class Private:
    owner: str       # a module's dotted path, or "module:Class"
    attribute: str
    on_instances: bool = False  # set by the class's __init__: looked for on an instance (`missing_on`)

    def resolve(self):
        """The attribute (for one set on instances, its class), or None where it is missing."""
        module, _, cls = self.owner.partition(":")
        try:
            owner = importlib.import_module(module)
        except ImportError:
            return None
        for name in filter(None, cls.split(".")):
            owner = getattr(owner, name, None)
        if owner is None or self.on_instances:
            return owner
        return getattr(owner, self.attribute, None)

    def __str__(self):
        return f"{self.owner.replace(':', '.')}.{self.attribute}"


PRIVATE = {
    # the recurrent stack as one call of PyTorch's LSTM, GRU or tanh RNN kernel, the call nn.LSTM, nn.GRU and
    # nn.RNN make
    "torch-fused-rnn": {"lstm": Private("torch._VF", "lstm"), "gru": Private("torch._VF", "gru"),
                        "rnn": Private("torch._VF", "rnn_tanh")},
    # Adam's update as PyTorch's fused kernel, in place of the torch backend's per-optimizer update
    "torch-fused-adam": {"kernel": Private("torch", "_fused_adam_"),
                         "update": Private("keras.src.backend.torch.optimizers.torch_adam:Adam",
                                           "_parallel_update_step")},
    # clipping by global norm as PyTorch's foreach ops, in place of Keras's clipping step
    "torch-foreach-clip": {"norm": Private("torch", "_foreach_norm"), "mul": Private("torch", "_foreach_mul"),
                           "clip": Private("keras.src.optimizers.base_optimizer:BaseOptimizer", "_clip_gradients")},
    # a fused LSTM's kernels (and the logits' kernel) stored transposed in memory, PyTorch's layout, by swapping
    # the tensor under a keras.Variable's Parameter
    "torch-transposed-layout": {"data": Private("torch:Tensor", "data")},
    # the loss tracker (a keras.metrics.Mean) taking each step's loss as two in-place additions
    "torch-loss-tracker": {"total": Private("keras.metrics:Mean", "total", on_instances=True),
                           "count": Private("keras.metrics:Mean", "count", on_instances=True)},
    # writing whole arrays of variables spread over several JAX processes (distribute.whole_variables)
    "jax-whole-variables": {"value": Private("keras:Variable", "_value", on_instances=True)},
    # per-tensor scales for the int8 bundle's dense layers, which tflite-runtime 2.14 loads (kerasrnn.export)
    "tflite-per-tensor-dense": {"flag": Private("tensorflow:lite.TFLiteConverter",
                                                "_experimental_disable_per_channel_quantization_for_dense_layers",
                                                on_instances=True)},
}
FALLBACK = {
    "torch-fused-rnn": "the recurrent stack runs one Keras layer at a time",
    "torch-fused-adam": "Keras's own Adam update runs",
    "torch-foreach-clip": "Keras's own clipping runs",
    "torch-transposed-layout": "the kernels keep Keras's layout in memory",
    "torch-loss-tracker": "the loss tracker's update_state runs",
    "jax-whole-variables": "training over several processes is refused",
    "tflite-per-tensor-dense": "the int8 files quantize dense layers per channel, which tflite-runtime 2.14 cannot load",
}
_enabled = {}


def get(path, name):
    """The private attribute `name` of fast path `path` (only once `enabled(path)` said yes)."""
    return PRIVATE[path][name].resolve()


def attribute(path, name):
    """The attribute's name, for a fast path that replaces it on an instance."""
    return PRIVATE[path][name].attribute


def missing_on(instance, path):
    """For a probe: what `instance` lacks of `path`'s attributes set on instances, or None."""
    missing = [str(p) for p in PRIVATE[path].values() if p.on_instances and not hasattr(instance, p.attribute)]
    return f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing" if missing else None


def enabled(path, probe):
    """Whether fast path `path` is on: its private attributes are there and `probe()` (None, or what is
    wrong) passes. Decided once per process, with one warning line when it is off."""
    if path not in _enabled:
        missing = [str(p) for p in PRIVATE[path].values() if p.resolve() is None]
        problem = f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing" if missing else None
        if not problem:
            try:
                problem = probe()
            except Exception as e:  # a changed signature or behaviour shows as any exception
                problem = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
        _enabled[path] = problem is None
        if problem:
            print(f"kerasrnn: warning: fast path {path} is off ({problem}; {versions()}); "
                  f"{FALLBACK[path]}", file=sys.stderr)
    return _enabled[path]


def versions():
    found = []
    for name in ("keras", "torch", "jax"):
        module = sys.modules.get(name)
        if module is not None:
            found.append(f"{name} {getattr(module, '__version__', '?')}")
    return ", ".join(found)
