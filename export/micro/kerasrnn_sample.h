/*
 * The sampling contract of export/SPEC.md (contract 2) in C99, for a microcontroller: SplitMix64, choose
 * (temperature, top-k, top-p, argmax; the exact draw in IEEE double), the start token and state, the
 * prime, and UTF-8 decoding of byte vocabularies. No allocation: the caller owns every buffer.
 *
 * Same seed, prime, parameters and logits: the same text, byte for byte, as kerasrnn sample,
 * kerasrnn-edge and the Java core (tests/test_micro.py holds it to export/sampling_vectors.json).
 * Char and byte vocabularies; no BPE.
 */
#ifndef KERASRNN_SAMPLE_H
#define KERASRNN_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most bytes krnn_next writes for one token (an encoded surrogate's two U+FFFD and one more). */
#define KRNN_MAX_PIECE 16

enum { KRNN_OK = 0, KRNN_ERROR_PARAMS = -1, KRNN_ERROR_PRIME = -2 };

typedef struct {
    uint64_t state;
} krnn_rng;

void krnn_rng_seed(krnn_rng *rng, uint64_t seed);
uint64_t krnn_rng_next_u64(krnn_rng *rng);
double krnn_rng_next_double(krnn_rng *rng); /* in [0, 1), 53 random bits */
/* The seed of stream i of many samples sampled with `seed` (SPEC.md, "Many samples"). */
uint64_t krnn_stream_seed(uint64_t seed, uint64_t i);

typedef struct {
    double temperature; /* > 0 */
    int32_t top_k;      /* 0: all */
    double top_p;       /* in (0, 1]; 1: all */
    int argmax;         /* nonzero: the most likely token, no number drawn */
} krnn_params;

/*
 * One token id from `logits` (the `size` float32 values the step model returned), drawing at most one
 * number from `rng`. `work`: 2 * size doubles; `order`: 2 * size int32 (scratch).
 */
int32_t krnn_choose(const float *logits, int32_t size, krnn_rng *rng, const krnn_params *params, double *work,
                    int32_t *order);

/* Incremental UTF-8 decoding of a byte vocabulary's ids, as Python's "replace" decoder writes it. */
typedef struct {
    unsigned char pending[4];
    int count;
} krnn_utf8;

/* Feeds one byte; writes the UTF-8 of what it completes (U+FFFD for an invalid sequence) to `out`
 * (KRNN_MAX_PIECE bytes); returns the bytes written. An incomplete sequence waits for the next byte. */
size_t krnn_utf8_feed(krnn_utf8 *decoder, unsigned char byte, char *out);

typedef struct {
    int bytes;                  /* nonzero: ids are byte values (UTF-8); zero: ids index code_points */
    int32_t size;               /* V */
    const uint32_t *code_points; /* char vocabulary: the code point of each id */
} krnn_vocab;

/* A step model: the caller's network (TFLite Micro, a table in the tests). */
typedef struct {
    void *model;
    void (*reset)(void *model);                       /* every state back to the start state */
    const float *(*feed)(void *model, int32_t token); /* reads one token; returns the V logits after it */
    int32_t start_token;
} krnn_model;

typedef struct {
    krnn_model model;
    krnn_vocab vocab;
    krnn_params params;
    double *work;   /* 2 * V doubles */
    int32_t *order; /* 2 * V int32 */
    /* set by krnn_begin */
    krnn_rng rng;
    krnn_utf8 utf8;
    const float *logits;
    size_t error_at; /* KRNN_ERROR_PRIME: the byte offset in the prime of the character not in the vocabulary */
} krnn_generator;

/*
 * generate()'s start: seeds the generator, resets the model, feeds the start token, then the prime's ids
 * (`prime`: `prime_len` bytes of UTF-8). Returns KRNN_OK, KRNN_ERROR_PARAMS (temperature <= 0, top_k < 0,
 * top_p outside (0, 1]) or KRNN_ERROR_PRIME (a character outside a char vocabulary, or invalid UTF-8).
 */
int krnn_begin(krnn_generator *g, const char *prime, size_t prime_len, uint64_t seed);

/*
 * One token of generate(): chooses it, writes its text to `out` (KRNN_MAX_PIECE bytes; returns how many),
 * and, if `more` (another token is wanted), feeds it to the model. `token`: the id chosen, if not NULL.
 */
size_t krnn_next(krnn_generator *g, int more, char *out, int32_t *token);

#ifdef __cplusplus
}
#endif

#endif
