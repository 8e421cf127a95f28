/*
 * tests/test_micro.py's driver of the C sampling core (export/micro/kerasrnn_sample.c): reads commands on
 * stdin, writes results on stdout. Numbers are decimal (floats as Python's repr or float.hex, exact);
 * text is hex ("-": empty).
 *
 *   rng SEED N                  N lines: next_u64 and next_double (hex)
 *   stream SEED I               stream_seed(SEED, I)
 *   choose SEED T K P A DRAWS V LOGITS...        the ids of DRAWS calls of choose
 *   vocab char V CODE_POINTS... | vocab byte
 *   table ROWS V LOGITS...      the vectors' table model (feed n after a reset, from START, of token t:
 *                               row (START + n + t) mod ROWS)
 *   replay N V (TOKEN LOGITS...) x N    a recording: feed i must be of TOKEN i; returns its LOGITS
 *   generate START_TOKEN START SEED T K P A LENGTH PRIME UNTIL     the text (cut after UNTIL), over the
 *                               last table or replay
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kerasrnn_sample.h"

static float *table;
static int32_t rows, width, start_row, feeds, replaying, *replay_tokens;
static uint32_t code_points[1 << 16];
static krnn_vocab vocab;

static double read_double(void) {
    char word[64];
    if (scanf("%63s", word) != 1) {
        exit(2);
    }
    return strtod(word, NULL);
}

static long long read_int(void) {
    long long value;
    if (scanf("%lld", &value) != 1) {
        exit(2);
    }
    return value;
}

static uint64_t read_u64(void) {
    char word[32];
    if (scanf("%31s", word) != 1) {
        exit(2);
    }
    return (uint64_t)strtoull(word, NULL, 10);
}

static size_t read_hex(char *out) {
    static char word[1 << 16];
    size_t n = 0;
    if (scanf("%65535s", word) != 1) {
        exit(2);
    }
    if (strcmp(word, "-") == 0) {
        return 0;
    }
    for (n = 0; word[2 * n]; n++) {
        unsigned byte;
        sscanf(word + 2 * n, "%2x", &byte);
        out[n] = (char)byte;
    }
    return n;
}

static void read_floats(float *out, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        out[i] = (float)read_double();
    }
}

static void reset(void *model) {
    (void)model;
    feeds = replaying ? 0 : start_row;
}

static const float *feed(void *model, int32_t token) {
    (void)model;
    if (replaying) {
        if (feeds >= rows || replay_tokens[feeds] != token) {
            fprintf(stderr, "feed %d: token %d, the recording has %d\n", (int)feeds, (int)token,
                    feeds < rows ? (int)replay_tokens[feeds] : -1);
            exit(3);
        }
        return table + (size_t)(feeds++) * (size_t)width;
    }
    return table + (size_t)((feeds++ + token) % rows) * (size_t)width;
}

static void load_table(int replay) {
    int32_t r;
    replaying = replay;
    rows = (int32_t)read_int();
    width = (int32_t)read_int();
    table = realloc(table, (size_t)rows * (size_t)width * sizeof *table);
    replay_tokens = realloc(replay_tokens, (size_t)rows * sizeof *replay_tokens);
    for (r = 0; r < rows; r++) {
        if (replay) {
            replay_tokens[r] = (int32_t)read_int();
        }
        read_floats(table + (size_t)r * (size_t)width, (size_t)width);
    }
}

static void generate(void) {
    static char prime[1 << 15], until[1 << 10], text[1 << 20];
    krnn_generator g;
    size_t prime_len, until_len, text_len = 0, i;
    long long length, n;
    uint64_t seed;
    int status;
    memset(&g, 0, sizeof g);
    g.model.reset = reset;
    g.model.feed = feed;
    g.model.start_token = (int32_t)read_int();
    start_row = (int32_t)read_int();
    seed = read_u64();
    g.params.temperature = read_double();
    g.params.top_k = (int32_t)read_int();
    g.params.top_p = read_double();
    g.params.argmax = (int)read_int();
    length = read_int();
    prime_len = read_hex(prime);
    until_len = read_hex(until);
    g.vocab = vocab;
    g.work = malloc(2 * (size_t)vocab.size * sizeof *g.work);
    g.order = malloc(2 * (size_t)vocab.size * sizeof *g.order);
    status = krnn_begin(&g, prime, prime_len, seed);
    if (status != KRNN_OK) {
        printf("error %d %zu\n", status, g.error_at);
    } else {
        for (n = 0; n < length; n++) {
            text_len += krnn_next(&g, n + 1 < length, text + text_len, NULL);
            if (until_len && text_len >= until_len && memcmp(text + text_len - until_len, until, until_len) == 0) {
                break;
            }
        }
        if (text_len == 0) {
            printf("-");
        }
        for (i = 0; i < text_len; i++) {
            printf("%02x", (unsigned char)text[i]);
        }
        printf("\n");
    }
    free(g.work);
    free(g.order);
}

int main(void) {
    char command[32];
    while (scanf("%31s", command) == 1) {
        if (strcmp(command, "rng") == 0) {
            krnn_rng rng;
            long long n, i;
            krnn_rng_seed(&rng, read_u64());
            n = read_int();
            for (i = 0; i < n; i++) {
                krnn_rng copy = rng;
                printf("%" PRIu64 " %a\n", krnn_rng_next_u64(&rng), krnn_rng_next_double(&copy));
            }
        } else if (strcmp(command, "stream") == 0) {
            uint64_t seed = read_u64();
            printf("%" PRIu64 "\n", krnn_stream_seed(seed, read_u64()));
        } else if (strcmp(command, "choose") == 0) {
            krnn_rng rng;
            krnn_params params;
            long long draws, d;
            int32_t size;
            float *logits;
            double *work;
            int32_t *order;
            krnn_rng_seed(&rng, read_u64());
            params.temperature = read_double();
            params.top_k = (int32_t)read_int();
            params.top_p = read_double();
            params.argmax = (int)read_int();
            draws = read_int();
            size = (int32_t)read_int();
            logits = malloc((size_t)size * sizeof *logits);
            work = malloc(2 * (size_t)size * sizeof *work);
            order = malloc(2 * (size_t)size * sizeof *order);
            read_floats(logits, (size_t)size);
            for (d = 0; d < draws; d++) {
                printf("%d ", (int)krnn_choose(logits, size, &rng, &params, work, order));
            }
            printf("\n");
            free(logits);
            free(work);
            free(order);
        } else if (strcmp(command, "vocab") == 0) {
            char kind[8];
            if (scanf("%7s", kind) != 1) {
                return 2;
            }
            vocab.bytes = strcmp(kind, "byte") == 0;
            vocab.size = vocab.bytes ? 256 : (int32_t)read_int();
            vocab.code_points = code_points;
            if (!vocab.bytes) {
                int32_t i;
                for (i = 0; i < vocab.size; i++) {
                    code_points[i] = (uint32_t)read_int();
                }
            }
        } else if (strcmp(command, "table") == 0 || strcmp(command, "replay") == 0) {
            load_table(strcmp(command, "replay") == 0);
        } else if (strcmp(command, "generate") == 0) {
            generate();
        } else {
            fprintf(stderr, "unknown command %s\n", command);
            return 2;
        }
        fflush(stdout);
    }
    return 0;
}
