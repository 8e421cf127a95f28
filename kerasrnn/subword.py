"""BPE subword vocabularies (`kerasrnn train --tokens bpe --vocab-size N`), learned with SentencePiece.

`learn` trains a SentencePiece BPE model on a stream of lines (the training part of a corpus, without
their line breaks: no piece holds one) and returns its pieces as a `Vocab`. The options make it
lossless: no normalization, no dummy prefix, spaces kept, byte fallback for what the pieces lack.
SentencePiece's BPE trainer writes spaces as U+2581 in its pieces, so a literal U+2581 in the text would
read back as a space: `learn` turns them back into spaces and `model_proto` sets escape_whitespaces off,
so U+2581 is an ordinary character (byte pieces, if the text never has it).

`model_proto` is the SentencePiece model of a vocabulary: its encoder gives the same ids as
`Vocab.encode` (export/SPEC.md, "Vocabulary"), far faster, for preparing corpora (`Encoder`), and
tensorflow-text runs it in the SavedModel's graph (kerasrnn_export/serving.py).
"""
import io
import os

from kerasrnn_edge.errors import UserError, option
from kerasrnn_edge.vocab import Vocab

SENTENCES = 1_000_000  # lines SentencePiece samples (at random, by a fixed seed) to learn from: bounds its memory
LONGEST_LINE = 8192    # bytes: SentencePiece leaves longer lines out of learning, so `sentences` cuts them
SPACE = "\u2581"       # SentencePiece's escaped space
NORMAL, UNKNOWN, BYTE = 1, 2, 6  # ModelProto.SentencePiece.Type


def _sentencepiece():
    try:
        import sentencepiece
        from sentencepiece import sentencepiece_model_pb2
    except ImportError:
        raise UserError(f"{option('tokens', 'bpe')} needs SentencePiece: pip install \"kerasrnn[subword]\"") from None
    return sentencepiece, sentencepiece_model_pb2


def sentences(lines, longest=LONGEST_LINE // 4):
    """The non-empty `lines`, each cut into pieces of at most `longest` characters (at most LONGEST_LINE bytes in
    UTF-8), before a space in the second half of the window where there is one: SentencePiece skips a longer
    line whole, so a text with few line breaks (minified code, a paragraph per line, `tr '\n' ' '`) gave it
    nothing to learn from. A cut only ends a word early where no space was near."""
    for line in lines:
        while len(line) > longest:
            cut = line.rfind(" ", longest // 2, longest)
            cut = cut if cut > 0 else longest
            yield line[:cut]
            line = line[cut:]
        if line:
            yield line


def learn(lines, vocab_size, seed=0):
    """The bpe Vocab SentencePiece learns from `lines` (strings without line breaks): the unknown piece,
    256 byte pieces, then the merged pieces in the order learned, then the characters. A text that gives
    fewer pieces than `vocab_size` gives what it has (said in one line)."""
    spm, pb = _sentencepiece()
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    fed = [0]

    def counted():
        for sentence in sentences(lines):
            fed[0] += 1
            yield sentence
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=counted(), model_writer=model, model_type="bpe",
            vocab_size=vocab_size, byte_fallback=True, normalization_rule_name="identity", add_dummy_prefix=False,
            remove_extra_whitespaces=False, split_by_whitespace=True, allow_whitespace_only_pieces=True,
            character_coverage=0.9995, unk_id=0, bos_id=-1, eos_id=-1, unk_surface="", hard_vocab_limit=False,
            input_sentence_size=SENTENCES, shuffle_input_sentence=True, max_sentence_length=LONGEST_LINE,
            num_threads=os.cpu_count() or 1, minloglevel=2)
    except RuntimeError as e:
        if not fed[0]:
            raise UserError("the training part of the text holds nothing but line breaks: there is nothing to learn "
                            "pieces from; pass a text with words in it") from None
        raise UserError(f"SentencePiece could not learn {vocab_size} pieces ({str(e).splitlines()[0]}): choose "
                        f"another {option('vocab_size')} (at least 257 plus the text's characters)") from None
    proto = pb.ModelProto.FromString(model.getvalue())
    pieces = [int(p.piece[3:5], 16) if p.type == BYTE else p.piece.replace(SPACE, " ") if p.type == NORMAL else None
              for p in proto.pieces]
    scores = [p.score for p in proto.pieces if p.type == NORMAL]
    if any(a <= b for a, b in zip(scores, scores[1:])):
        raise AssertionError("SentencePiece's BPE scores do not fall with the id: SPEC.md's merge order is not its own")
    if len(pieces) < vocab_size:
        print(f"kerasrnn: the text gives {len(pieces)} pieces, fewer than the {vocab_size} asked ({option('vocab_size')}): "
              "training goes on with them", flush=True)
    return Vocab("bpe", pieces=pieces)


def model_proto(vocab):
    """The serialized SentencePiece ModelProto of a bpe Vocab: piece i has score -i, so SentencePiece's
    merge order (highest score first) is the spec's (smallest id first)."""
    _, pb = _sentencepiece()
    proto = pb.ModelProto()
    proto.trainer_spec.model_type = pb.TrainerSpec.BPE
    proto.trainer_spec.vocab_size = vocab.size
    proto.trainer_spec.byte_fallback = True
    proto.trainer_spec.unk_id = vocab.pieces.index(None)
    proto.trainer_spec.bos_id = proto.trainer_spec.eos_id = proto.trainer_spec.pad_id = -1
    proto.trainer_spec.unk_surface = ""
    spec = proto.normalizer_spec
    spec.name, spec.add_dummy_prefix, spec.remove_extra_whitespaces, spec.escape_whitespaces = "identity", 0, 0, 0
    for i, piece in enumerate(vocab.pieces):
        text, kind = (("<unk>", UNKNOWN) if piece is None else (f"<0x{piece:02X}>", BYTE) if isinstance(piece, int)
                      else (piece, NORMAL))
        proto.pieces.add(piece=text, score=-float(i) if kind == NORMAL else 0.0, type=kind)
    return proto.SerializeToString()


class Encoder:
    """Text -> the ids of a bpe Vocab, by SentencePiece's encoder (a corpus at C++ speed)."""

    def __init__(self, vocab):
        spm, _ = _sentencepiece()
        self.processor = spm.SentencePieceProcessor(model_proto=model_proto(vocab))

    def encode(self, text):
        return self.processor.encode(text)
