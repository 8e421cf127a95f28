"""Edge sampling speed on one CPU thread: the char-rnn-sized model (3 x 512 LSTM, vocab 65, embedding 128).

Untrained weights (speed does not depend on them). For each runtime: the bare step (invoke only),
the step model's feed (invoke + token in + state copied back + logits out), and the full sampler loop
(`EdgeSampler.generate`: feed + choose + decode); then peers (Keras predict, a tf.function step),
choose() alone, and priming 1,000 characters token by token vs in one feed (ONNX: one run).

Many samples (`--batch-sizes 1,16`): aggregate chars/s of `EdgeSampler.generate_batch` at each N (N
streams of 500 characters, LiteRT int8, the bundle's batch models), the sizes alternating round by round;
then the bare invoke of each batch model, and one of the step's gate products converted alone (a 512 x
2048 int8 FULLY_CONNECTED whose 1 MB of weights stays in this core's L2 cache), which shows how the batch
step's time splits into reading the weights and the arithmetic (docs/benchmarks.md, "Many samples").

Beam search (`--beams 1,4,16`): chars/s of the best text `EdgeSampler.beam_search` finds with N beams
(fp32, LiteRT on a bundle with a TFLite batch-N file, and ONNX Runtime's batch graph at N rows), next to
greedy decoding (`generate(argmax=True)`), the N alternating round by round.

    python benchmarks/edge_sampling.py [--seconds 2]
    python benchmarks/edge_sampling.py --batch-sizes 1,16 [--rounds 5]
    python benchmarks/edge_sampling.py --beams 1,4,16 [--rounds 3]
"""
import datetime
import os
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

from kerasrnn.config import Config  # noqa: E402
from kerasrnn.models.language_model import copy_weights, reset_states  # noqa: E402
from kerasrnn.models.recurrent import build_model  # noqa: E402
from kerasrnn.files import save_model, write_json  # noqa: E402
from kerasrnn_edge.errors import ArgumentParser, one_line_errors, positive  # noqa: E402
from kerasrnn_edge.sampling import SplitMix64, choose  # noqa: E402
from kerasrnn_edge.sampler import EdgeSampler  # noqa: E402
from kerasrnn_edge.vocab import Vocab  # noqa: E402
from kerasrnn.export import export_bundle  # noqa: E402
from kerasrnn.export import int8_weights  # noqa: E402

CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # tiny-shakespeare's 65
MODEL = dict(cell="lstm", rnn_size=512, num_layers=3, embedding_size=128)


def rate(fn, seconds, unit=1):
    """Calls per second of `fn` (times `unit`), after one warm-up call, for about `seconds`."""
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n * unit / (time.perf_counter() - start)


def make_bundle(directory, batch=None):
    vocab = Vocab("char", CHARS)
    run_dir = os.path.join(directory, "run")
    os.makedirs(run_dir)
    model = build_model(vocab.size, 1, None, **MODEL)
    save_model(model, os.path.join(run_dir, "best.keras"))
    write_json(os.path.join(run_dir, "config.json"), Config(**MODEL).to_json())
    write_json(os.path.join(run_dir, "vocab.json"), vocab.to_json())
    export_bundle(run_dir, os.path.join(directory, "bundle"), batch=batch)
    return model, os.path.join(directory, "bundle")


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=positive(float), default=2.0, help="per measurement")
    parser.add_argument("--batch-sizes", help="measure many samples at these N instead (e.g. 1,16)")
    parser.add_argument("--rounds", type=positive(int), default=5, help="with --batch-sizes: rounds, each N once per round")
    parser.add_argument("--precision", choices=["int8", "fp32"], default="int8", help="with --batch-sizes")
    parser.add_argument("--beams", help="measure beam search at these widths instead (e.g. 1,4,16)")
    args = parser.parse_args()
    if args.beams:
        return beam_speed([int(n) for n in args.beams.split(",")], args.rounds)
    if args.batch_sizes:
        return many_samples([int(n) for n in args.batch_sizes.split(",")], args.rounds, args.precision)
    seconds = args.seconds
    rows = []

    def report(name, chars_per_second, note=""):
        rows.append((name, chars_per_second, note))
        print(f"{name:<52} {chars_per_second:>10,.0f} chars/s  {note}", flush=True)

    print(f"{datetime.date.today()}  {platform.processor() or platform.machine()}  "
          f"load average {os.getloadavg()[0]:.2f}  one thread each")
    with tempfile.TemporaryDirectory() as directory:
        trained, bundle = make_bundle(directory)
        token = np.array([7], np.int32)
        prime_ids = np.random.default_rng(0).integers(0, len(CHARS), 1000).astype(np.int32)
        for runtime, precision in [("ai-edge-litert", "int8"), ("ai-edge-litert", "fp32"), ("onnxruntime", "fp32")]:
            sampler = EdgeSampler.load(bundle, runtime, precision)
            step = sampler.model
            label = f"{runtime} {precision}"
            feed_one_by_one(step, prime_ids[:100])  # a real state: hybrid int8 kernels skip all-zero inputs
            if runtime == "onnxruntime":
                feeds = {"token": token, **step.states}
                invoke = rate(lambda: step.session.run(None, feeds), seconds)
            else:
                invoke = rate(step.interpreter.invoke, seconds)
            report(f"{label}: bare invoke", invoke)
            feed = rate(lambda: step.feed(token), seconds)
            report(f"{label}: step model feed", feed, f"{1 - feed / invoke:.0%} below invoke")
            loop = rate(lambda: sum(1 for _ in sampler.generate("", 500, seed=1)), seconds, unit=500)
            report(f"{label}: full sampler loop (generate)", loop, f"{1 - loop / invoke:.0%} below invoke")
            per_token = rate(lambda: feed_one_by_one(step, prime_ids), seconds, unit=len(prime_ids))
            report(f"{label}: prime 1000 chars, one token per call", per_token)
            whole = rate(lambda: (step.reset(), step.feed(prime_ids)), seconds, unit=len(prime_ids))
            report(f"{label}: prime 1000 chars in one feed", whole, "one run" if runtime == "onnxruntime" else "")

        logits = np.random.default_rng(1).normal(0, 2, len(CHARS)).astype(np.float32)
        rng = SplitMix64(1)
        report("choose() alone (temperature 1)", rate(lambda: choose(logits, rng), seconds))
        report("choose() alone (top-k 10, top-p 0.9)", rate(lambda: choose(logits, rng, 1.0, 10, 0.9), seconds))

        stepper = build_model(len(CHARS), 1, 1, **MODEL)
        copy_weights(trained, stepper)
        reset_states(stepper)
        x = np.array([[7]], np.int32)
        tf_step = tf.function(lambda x: stepper(x, training=False))
        report("tf.function step (Keras model, batch 1)", rate(lambda: tf_step(x).numpy(), seconds))
        report("Keras predict, one char per call", rate(lambda: stepper.predict(x, verbose=0), seconds))


def many_samples(sizes, rounds, precision, length=500):
    """Aggregate chars/s of N streams sampled as batches, each N once per round (alternating, so that a
    change in the machine's load hits every N alike); prints each round and the median ratio to the first N."""
    print(f"{datetime.date.today()}  {platform.processor() or platform.machine()}  one thread  "
          f"ai-edge-litert {precision}, {length} chars per stream, bundle batch {max(sizes)}")
    with tempfile.TemporaryDirectory() as directory:
        _, bundle = make_bundle(directory, batch=max(sizes))
        sampler = EdgeSampler.load(bundle, "ai-edge-litert", precision)
        rates = {n: [] for n in sizes}
        for n in sizes:  # opens each batch model once (not timed)
            sampler.generate_batch("", 1, num_samples=n)
        for r in range(rounds):
            for n in sizes:
                start = time.perf_counter()
                texts = sampler.generate_batch("", length, num_samples=n, seed=r)
                rates[n].append(sum(map(len, texts)) / (time.perf_counter() - start))
            print(f"round {r + 1}  load average {os.getloadavg()[0]:.2f}  " +
                  "  ".join(f"N={n}: {rates[n][-1]:,.0f} chars/s" for n in sizes), flush=True)
        invokes = {n: [] for n in sizes}  # the bare invoke of each batch model, on a real state
        for _ in range(rounds):
            for n in sizes:
                step = sampler.batch_models[n]
                feed_one_by_one(step, np.zeros((step.batch, 20), np.int32) + np.arange(20, dtype=np.int32))
                invokes[n].append(1e6 / rate(step.interpreter.invoke, 0.5))
    products = gate_product_alone(sizes, rounds, precision)
    base = sizes[0]
    for n in sizes:
        ratio = np.median([a / b for a, b in zip(rates[n], rates[base])])
        invoke = np.median([a / b for a, b in zip(invokes[n], invokes[base])])
        print(f"N={n}: median {np.median(rates[n]):,.0f} chars/s, median ratio to N={base}: {ratio:.2f}x; bare invoke "
              f"{np.median(invokes[n]):,.0f} us, {invoke:.2f}x that of N={base} (so at most {n / invoke:.1f}x "
              f"chars/s from the model)")
    size = MODEL["rnn_size"]
    for n in sizes:
        best, median = np.min(products[n]), np.median(products[n])
        print(f"N={n}: one {size}x{4 * size} {precision} gate product alone: best {best:,.1f} us "
              f"({n * size * 4 * size / best / 1e3:,.0f} G multiply-adds/s), median {median:,.1f} us")


def beam_speed(widths, rounds, length=200):
    """Chars/s of beam search's best text at each width N (fp32; LiteRT at a TFLite batch-N file, ONNX
    Runtime's batch graph at N rows) and of greedy decoding, medians over `rounds` rounds."""
    print(f"{datetime.date.today()}  {platform.processor() or platform.machine()}  one thread  fp32, "
          f"{length} chars of text per search")
    runtimes = ("ai-edge-litert", "onnxruntime")
    with tempfile.TemporaryDirectory() as directory:
        samplers = {}
        for n in widths:
            _, bundle = make_bundle(os.path.join(directory, f"b{n}"), batch=n)
            for runtime in runtimes:
                samplers[runtime, n] = EdgeSampler.load(bundle, runtime, "fp32")
                samplers[runtime, n].beam_search("", 1, n)  # opens the batch model (not timed)
        rates = {key: [] for key in samplers}
        greedy = {runtime: [] for runtime in runtimes}
        for r in range(rounds):
            for runtime in runtimes:
                start = time.perf_counter()
                text = "".join(samplers[runtime, widths[0]].generate("", length, argmax=True))
                greedy[runtime].append(len(text) / (time.perf_counter() - start))
                for n in widths:
                    start = time.perf_counter()
                    text = samplers[runtime, n].beam_search("", length, n)[0].text
                    rates[runtime, n].append(len(text) / (time.perf_counter() - start))
            print(f"round {r + 1}  load average {os.getloadavg()[0]:.2f}", flush=True)
    for runtime in runtimes:
        print(f"{runtime}: greedy {np.median(greedy[runtime]):,.0f} chars/s; " +
              "; ".join(f"beam {n}: {np.median(rates[runtime, n]):,.0f} chars/s" for n in widths))


def gate_product_alone(sizes, rounds, precision):
    """Microseconds per invoke of one h @ recurrent_kernel product at each batch, converted alone as the
    bundle converts the step (same converter options); its weights stay cached between invokes."""
    size = MODEL["rnn_size"]
    kernel = tf.constant(np.random.default_rng(2).normal(0, 0.05, (size, 4 * size)).astype(np.float32))
    interpreters = {}
    for n in sizes:
        product = tf.function(lambda h: tf.matmul(h, kernel), input_signature=[tf.TensorSpec([n, size], tf.float32)])
        converter = tf.lite.TFLiteConverter.from_concrete_functions([product.get_concrete_function()], product)
        if precision == "int8":
            int8_weights(converter)
        interpreter = Interpreter(model_content=converter.convert(), num_threads=1)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                               np.random.default_rng(3).normal(0, 0.3, (n, size)).astype(np.float32))
        interpreters[n] = interpreter
    times = {n: [] for n in sizes}
    for _ in range(rounds):
        for n in sizes:
            times[n].append(1e6 / rate(interpreters[n].invoke, 0.5))
    return times


def feed_one_by_one(step, ids):
    """Feeds `ids` ([k]; a batched step model: [batch, k]) one token per call."""
    step.reset()
    for i in range(ids.shape[-1]):
        step.feed(ids[..., i:i + 1])
    if hasattr(step, "interpreter"):  # the state in the inputs too, for a bare invoke on real values
        for state_in, state_out in step.state_pairs:
            step.interpreter.set_tensor(state_in, step.interpreter.get_tensor(state_out))


if __name__ == "__main__":
    with one_line_errors():
        main()
