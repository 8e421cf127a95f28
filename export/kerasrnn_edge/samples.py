"""Many samples at once, as `kerasrnn sample` and `kerasrnn-edge sample` print them (`--num-samples N
--until DELIM --novel`): the delimiter option, what "novel" means, and the output format. The streams
themselves and their seeds are the sampling contract's (sampling.generate_batch, SPEC.md "Many samples").

Output: the samples in stream order, each as prime + text without its delimiter, then a newline; with
`--until "\\n"` that is one sample per line, otherwise an empty line separates two samples.
"""
import re
import sys

from .errors import UserError

ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def parse_until(text, name="--until"):
    """The delimiter of `--until` (or a `--stop` string), with the escapes \\n, \\t, \\r and \\\\ (a shell
    passes "\\n" as two characters)."""
    unknown = sorted({c for c in re.findall(r"\\(.?)", text, re.S) if c not in ESCAPES})
    if unknown:
        raise UserError(f"{name} {text!r} has an unknown escape (\\{unknown[0]}): use \\n, \\t, \\r or \\\\")
    return re.sub(r"\\(.)", lambda m: ESCAPES[m.group(1)], text)


def add_many_samples_options(parser):
    """--num-samples and --until, for both samplers' command lines."""
    parser.add_argument("--num-samples", type=int, default=1, metavar="N",
                        help="N samples computed as batches, printed in order; sample i is exactly the single sample "
                             "of the i-th stream seed derived from --seed (export/SPEC.md, \"Many samples\"; "
                             "sample 0: --seed itself)")
    parser.add_argument("--until", default="", metavar="DELIM",
                        help="end each sample at this delimiter (escapes: \\n \\t \\r \\\\); --length still caps it. "
                             "Printed: each sample without its delimiter, one per line with --until \"\\n\", "
                             "else separated by an empty line")


def without_delimiter(text, until):
    return text[:-len(until)] if until and text.endswith(until) else text


class Novelty:
    """Whether a sample is found in a training text: with a delimiter, if it is one of the pieces between
    the text's delimiters (names, one per line, with "\\n": a whole line of the text);
    without one, if it occurs anywhere in the text."""

    def __init__(self, text, until, where):
        pieces = without_delimiter(text, until).split(until) if until else None  # a last delimiter ends a piece
        self.text, self.where, self.pieces = text, where, set(pieces) if until else None

    @classmethod
    def of_file(cls, path, until):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return cls(f.read(), until, path)
        except OSError as e:
            raise UserError(f"cannot read the training text {path} ({e.strerror}): pass the file the model "
                            "was trained on") from None

    def found(self, sample):
        return sample in self.pieces if self.pieces is not None else sample in self.text


def write_samples(texts, prime, until, novelty=None, out=None, err=None, prog="kerasrnn"):
    """Prints the samples to `out` (default stdout): only those not found by `novelty`, if given, and how
    many on `err` (default stderr)."""
    out, err = out or sys.stdout, err or sys.stderr
    samples = [prime + without_delimiter(text, until) for text in texts]
    if novelty is not None:
        samples = [s for s in samples if not novelty.found(s)]
        print(f"{prog}: {len(samples)} of {len(texts)} samples are novel (not found in {novelty.where})", file=err)
    out.write(("\n" if until == "\n" else "\n\n").join(samples) + ("\n" if samples else ""))
    out.flush()
