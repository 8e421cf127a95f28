"""Data-parallel training over the devices of one machine or of several (JAX, keras.distribution).

A device mesh with one `batch` axis: the B streams are split evenly across the devices, each device
keeping its own streams' recurrent state (the state weights are laid out ("batch", None), so nothing
is gathered per step) while every other weight is replicated and the gradients are all-reduced.
Training is the same math as on one device: the loss is the mean over all B streams.

Several processes (one per machine, or per GPU) join through `keras.distribution.initialize`; each feeds
only its own streams' rows (`Plan.rows`), which is all of the memory-mapped ids it reads. Values that
span other processes' devices (the state weights, in checkpoints and for the start state) are read back
with JAX's multihost utilities (`gather`, `whole_variables`). Process 0 writes the run directory; the
others write their identical files to a temporary directory of their own (`Plan.out_dir`).
"""
import contextlib
import dataclasses
import os
import re
import shutil
import tempfile

import numpy as np

from kerasrnn_edge.errors import UserError

from . import compat

STATE_WEIGHTS = r"recurrent/[hc]_\d+$"  # StatefulRecurrent.state_weights' paths: [batch, units] each
PROCESS_ENV = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
               "KERAS_DISTRIBUTION_PROCESS_ID", "JAX_COORDINATOR_ADDRESS")


@dataclasses.dataclass
class Launch:
    """What `kerasrnn train` was asked for: `devices` per process ("all" or a count; None: no distribution),
    and the processes to join (None: from the environment, keras.distribution.initialize's variables)."""
    devices: str = None
    coordinator: str = None
    num_processes: int = None
    process_id: int = None

    @property
    def multiprocess(self):
        return (self.coordinator is not None or self.num_processes is not None or self.process_id is not None
                or any(name in os.environ for name in PROCESS_ENV))

    @property
    def requested(self):
        return self.devices is not None or self.multiprocess


@dataclasses.dataclass
class Plan:
    """This process's part of a distributed run: its streams' rows, the device count, whether it writes."""
    rows: slice
    devices: int
    processes: int
    process_id: int
    out_dir: str  # the run directory (process 0) or a temporary directory (the other processes)

    @property
    def writer(self):
        return self.process_id == 0


def start(launch, config, run_dir):
    """Joins the processes, lays out the mesh and sets the global keras distribution; returns the Plan."""
    import keras
    if keras.backend.backend() != "jax":
        raise UserError(f"--devices and --coordinator need the JAX backend (this is {keras.backend.backend()}): "
                        "run with KERAS_BACKEND=jax")
    if launch.multiprocess:
        address = launch.coordinator
        try:
            keras.distribution.initialize(address, launch.num_processes, launch.process_id)
        except (ValueError, RuntimeError) as e:
            raise UserError(f"could not join the processes at {address or 'the environment address'} "
                            f"({str(e).splitlines()[0][:200]}): check --coordinator HOST:PORT, --num-processes "
                            "and --process-id (or KERAS_DISTRIBUTION_*)") from None
    import jax
    local = jax.local_devices()
    per_process = len(local) if launch.devices in (None, "all") else _count(launch.devices, len(local))
    # each process's first `per_process` devices, in process order: process p holds rows [p B/P, (p+1) B/P)
    by_process = {}
    for d in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        by_process.setdefault(d.process_index, []).append(d)
    devices = [d for p in sorted(by_process) for d in by_process[p][:per_process]]
    batch_size = config.batch_size
    if batch_size % len(devices):
        raise UserError(f"--batch-size {batch_size} does not split evenly across {len(devices)} devices: "
                        f"use a multiple of {len(devices)}")
    processes, process_id = jax.process_count(), jax.process_index()
    if processes > 1 and config.max_seconds:  # each process's clock would stop it at a different step
        raise UserError("--max-seconds cannot stop several processes at the same step: leave it at 0 and "
                        "bound the run with --max-epochs")
    mesh = keras.distribution.DeviceMesh((len(devices),), ["batch"], devices)
    layout_map = keras.distribution.LayoutMap(mesh)
    layout_map[STATE_WEIGHTS] = ("batch", None)
    keras.distribution.set_distribution(keras.distribution.ModelParallel(
        layout_map=layout_map, batch_dim_name="batch", auto_shard_dataset=False))
    rows = batch_size // processes
    out_dir = run_dir if process_id == 0 else tempfile.mkdtemp(prefix=f"kerasrnn-process{process_id}-")
    return Plan(slice(process_id * rows, (process_id + 1) * rows), len(devices), processes, process_id, out_dir)


def _count(devices, available):
    if not re.fullmatch(r"\d+", str(devices)) or not 1 <= int(devices) <= available:
        raise UserError(f"--devices must be all or a count from 1 to {available} (this process's devices), "
                        f"got {devices!r}")
    return int(devices)


def finish(plan):
    """Ends the distribution: removes a non-writing process's temporary directory."""
    import keras
    keras.distribution.set_distribution(None)
    if not plan.writer:
        shutil.rmtree(plan.out_dir, ignore_errors=True)


def spans_processes(value):
    """Whether a JAX array has parts on other processes' devices (and so no whole copy here)."""
    return not (getattr(value, "is_fully_addressable", True) or value.is_fully_replicated)


def gather(value):
    """A variable's value as numpy, fetched from every process when it spans several (a collective: every
    process must call it)."""
    from keras import ops
    if not spans_processes(value):
        return ops.convert_to_numpy(value)
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(value, tiled=True))


@contextlib.contextmanager
def whole_variables(model):
    """For the block, every variable of `model` whose value spans processes holds its whole value on this
    process (so that model.save reads it), then its distributed value again. Every process must enter it."""
    spread = [v for v in model.variables if spans_processes(v.value)]
    if spread and not compat.enabled("jax-whole-variables", probe_whole_variables):
        raise UserError("this Keras cannot save variables spread over several processes (see the warning "
                        "above): train on one process, or install the Keras pyproject.toml names")
    name = compat.attribute("jax-whole-variables", "value")  # the value a Variable's `value` reads
    spread = [(v, v.value) for v in spread]
    for variable, value in spread:
        setattr(variable, name, gather(value))
    try:
        yield
    finally:
        for variable, value in spread:
            setattr(variable, name, value)


def probe_whole_variables():
    import keras
    variable = keras.Variable(np.zeros(2, "float32"))
    if problem := compat.missing_on(variable, "jax-whole-variables"):
        return problem
    setattr(variable, compat.attribute("jax-whole-variables", "value"), keras.ops.ones(2))
    return None if float(keras.ops.sum(variable.value)) == 2 else "replacing it did not change the value"


def tiled(row, batch):
    """The model input of `batch` copies of `row`, for a call outside `fit` (predict_on_batch, which feeds
    its input as it is): under a distribution, laid out across the devices, each process giving its rows."""
    import keras
    inputs = np.tile(row, (batch, 1))
    if keras.backend.backend() != "jax" or keras.distribution.distribution() is None:
        return inputs
    import jax
    inputs = inputs[: batch // jax.process_count()]
    layout = keras.distribution.distribution().get_data_layout(inputs.shape).backend_layout
    return jax.make_array_from_process_local_data(layout, inputs)


def read(model, inputs):
    """Runs `model` over each of `inputs` (model inputs, in order) for its state alone. By predict_on_batch,
    unless the input spans processes: predict_on_batch fetches the outputs, which then have no whole copy
    here, so a compiled stateless call that drops them takes its place."""
    if not inputs or not spans_processes(inputs[0]):
        for x in inputs:
            model.predict_on_batch(x)
        return
    import jax
    trainable = [v.value for v in model.trainable_variables]
    state = [v.value for v in model.non_trainable_variables]
    step = jax.jit(lambda trainable, state, x: model.stateless_call(trainable, state, x, training=False)[1])
    for x in inputs:
        state = step(trainable, state, x)
    for variable, value in zip(model.non_trainable_variables, state):
        variable.assign(value)
