"""kerasrnn-edge sample BUNDLE ...: prints the prime, then streams the sampled text (as `kerasrnn sample`);
with --num-samples, --until or --novel-against, prints many samples computed as batches (samples.py); with
--beam, the likeliest continuation beam search finds (beam.py)."""
import sys

from .beam import add_beam_options, check_beam_args, write_beams
from .errors import ArgumentParser, UserError, one_line_errors
from .runtimes import RUNTIMES
from .sampler import EdgeSampler
from .samples import Novelty, add_many_samples_options, parse_until, write_samples
from .sampling import check_stop


def main(argv=None):
    parser = ArgumentParser(prog="kerasrnn-edge", description="Sample text from a kerasrnn edge bundle.")
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("sample", help="generate text (same seed and settings: same text as kerasrnn sample)")
    sample.add_argument("bundle", help="bundle directory made by kerasrnn export")
    sample.add_argument("--prime", default="", help="text to start from")
    sample.add_argument("--length", type=int, default=500, help="tokens to generate")
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0: all)")
    sample.add_argument("--top-p", type=float, default=1.0, help="keep the smallest set with probability >= p")
    sample.add_argument("--seed", type=int, default=0, help="non-negative; the same seed gives the same text")
    sample.add_argument("--argmax", action="store_true", help="always take the most likely token")
    sample.add_argument("--runtime", choices=list(RUNTIMES),
                        help="default: the first of these installed (tflite-micro first for a micro bundle)")
    sample.add_argument("--precision", choices=["fp32", "int8", "integer"],
                        help="default: integer for a micro bundle (kerasrnn export --micro), else fp32")
    add_many_samples_options(sample)
    sample.add_argument("--novel-against", metavar="TEXT_FILE",
                        help="print only samples not found in this text, the model's training text (with --until: "
                             "not a whole piece of it, e.g. a whole line for \"\\n\"; without: not anywhere in it)")
    add_beam_options(sample)
    args = parser.parse_args(argv)
    try:
        with one_line_errors("kerasrnn-edge"):
            sample_command(args)
    except SystemExit as e:  # the status one_line_errors exits with: main returns it, as it returns 0
        return e.code
    return 0


def sample_command(args):
    """One sample streams as it is made; several (or --until, --novel-against) are batches, printed at the end;
    --beam prints beam search's best continuation (or all N)."""
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0 (got {args.seed})")
    if args.num_samples < 1:
        raise UserError(f"--num-samples must be >= 1 (got {args.num_samples})")
    until = parse_until(args.until)
    stop = check_stop([parse_until(s, "--stop") for s in args.stop])
    check_beam_args(args, until, args.novel_against)
    novelty = Novelty.of_file(args.novel_against, until) if args.novel_against else None
    sampler = EdgeSampler.load(args.bundle, args.runtime, args.precision)
    if args.beam is not None:
        write_beams(sampler.beam_search(args.prime, args.length, args.beam, args.length_penalty, stop),
                    args.prime, args.show_beams)
        return
    if args.num_samples > 1 or until or novelty:
        texts = sampler.generate_batch(args.prime, args.length, args.temperature, args.top_k, args.top_p,
                                       args.seed, args.argmax, args.num_samples, until, stop)
        write_samples(texts, args.prime, until, novelty, prog="kerasrnn-edge")
        return
    pieces = sampler.generate(args.prime, args.length, args.temperature, args.top_k, args.top_p, args.seed,
                              args.argmax, stop)
    first = next(pieces, "")  # bad arguments and prime characters fail here, before any output
    sys.stdout.write(args.prime + first)
    sys.stdout.flush()
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


if __name__ == "__main__":
    sys.exit(main())
