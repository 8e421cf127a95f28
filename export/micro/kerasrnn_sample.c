/* The sampling contract (export/SPEC.md) in C99: see kerasrnn_sample.h. */
#include "kerasrnn_sample.h"

#include <math.h>
#include <string.h>

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)

void krnn_rng_seed(krnn_rng *rng, uint64_t seed) {
    rng->state = seed;
}

uint64_t krnn_rng_next_u64(krnn_rng *rng) {
    uint64_t z;
    rng->state += GOLDEN;
    z = rng->state;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

double krnn_rng_next_double(krnn_rng *rng) {
    return (double)(krnn_rng_next_u64(rng) >> 11) * (1.0 / 9007199254740992.0); /* * 2^-53, exact */
}

uint64_t krnn_stream_seed(uint64_t seed, uint64_t i) {
    krnn_rng rng;
    if (i == 0) {
        return seed;
    }
    krnn_rng_seed(&rng, seed + (i - 1) * GOLDEN);
    return krnn_rng_next_u64(&rng);
}

/* ids[0..n) sorted by v descending, ties by smaller id first: a stable bottom-up merge sort (tmp: n). */
static void sort_descending(const double *v, int32_t n, int32_t *ids, int32_t *tmp) {
    int32_t width, lo, i;
    for (i = 0; i < n; i++) {
        ids[i] = i;
    }
    for (width = 1; width < n; width *= 2) {
        for (lo = 0; lo < n; lo += 2 * width) {
            int32_t mid = lo + width < n ? lo + width : n;
            int32_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            int32_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi) {
                tmp[k++] = v[ids[b]] > v[ids[a]] ? ids[b++] : ids[a++]; /* equal: the earlier stays first */
            }
            while (a < mid) {
                tmp[k++] = ids[a++];
            }
            while (b < hi) {
                tmp[k++] = ids[b++];
            }
        }
        memcpy(ids, tmp, (size_t)n * sizeof *ids);
    }
}

int32_t krnn_choose(const float *logits, int32_t size, krnn_rng *rng, const krnn_params *params, double *work,
                    int32_t *order) {
    double *w = work, *c = work + size, max, sum, target;
    int32_t i;
    if (params->argmax) {
        int32_t best = 0;
        for (i = 1; i < size; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }
    for (i = 0; i < size; i++) {
        w[i] = (double)logits[i] / params->temperature;
    }
    if (params->top_k > 0 && params->top_k < size) {
        sort_descending(w, size, order, order + size);
        for (i = params->top_k; i < size; i++) {
            w[order[i]] = -INFINITY;
        }
    }
    max = -INFINITY;
    for (i = 0; i < size; i++) {
        max = w[i] > max ? w[i] : max;
    }
    for (i = 0; i < size; i++) {
        w[i] = exp(w[i] - max); /* excluded ids: exp(-inf) = 0 */
    }
    if (params->top_p < 1.0) {
        int32_t kept = 0;
        sort_descending(w, size, order, order + size);
        sum = 0.0;
        for (i = 0; i < size; i++) {
            sum += w[order[i]];
            c[i] = sum;
        }
        while (kept < size - 1 && !(c[kept] >= params->top_p * c[size - 1])) {
            kept++;
        }
        for (i = kept + 1; i < size; i++) {
            w[order[i]] = 0.0;
        }
    }
    sum = 0.0;
    for (i = 0; i < size; i++) {
        sum += w[i];
        c[i] = sum;
    }
    target = krnn_rng_next_double(rng) * c[size - 1];
    for (i = 0; i < size; i++) {
        if (target < c[i]) {
            return i;
        }
    }
    for (i = size - 1; i > 0; i--) { /* rounding left none: the largest id with w > 0 */
        if (w[i] > 0) {
            return i;
        }
    }
    return 0;
}

static size_t put_replacement(char *out) {
    out[0] = (char)0xEF;
    out[1] = (char)0xBF;
    out[2] = (char)0xBD;
    return 3;
}

size_t krnn_utf8_feed(krnn_utf8 *d, unsigned char byte, char *out) {
    size_t written = 0;
    if (d->count == 2 && d->pending[0] == 0xED && (d->pending[1] & 0xE0) == 0xA0) {
        /* ED A0..BF starts an encoded surrogate: Python holds both bytes back until a third comes, then
         * writes one U+FFFD for each and reads the third afresh. */
        written += put_replacement(out);
        written += put_replacement(out + written);
        d->count = 0;
    }
    for (;;) {
        unsigned char lead, low = 0x80, high = 0xBF;
        int need;
        if (d->count == 0) {
            if (byte < 0x80) {
                out[written++] = (char)byte;
            } else if (byte >= 0xC2 && byte <= 0xF4) {
                d->pending[d->count++] = byte;
            } else {
                written += put_replacement(out + written);
            }
            return written;
        }
        lead = d->pending[0];
        need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        if (d->count == 1) { /* the second byte's range depends on the lead (no overlong, none past U+10FFFF) */
            if (lead == 0xE0) {
                low = 0xA0;
            } else if (lead == 0xF0) {
                low = 0x90;
            } else if (lead == 0xF4) {
                high = 0x8F;
            }
        }
        if (byte < low || byte > high) { /* the sequence so far is invalid: one U+FFFD, then this byte afresh */
            written += put_replacement(out + written);
            d->count = 0;
            continue;
        }
        d->pending[d->count++] = byte;
        if (d->count == need) { /* complete and valid: its bytes are its UTF-8 */
            memcpy(out + written, d->pending, (size_t)need);
            written += (size_t)need;
            d->count = 0;
        }
        return written;
    }
}

static size_t put_code_point(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The code point at text[*at] (valid UTF-8), advancing *at; -1 if the bytes there are not one. */
static int32_t next_code_point(const unsigned char *text, size_t length, size_t *at) {
    unsigned char lead = text[*at];
    int need = lead < 0x80 ? 1 : lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3
             : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
    uint32_t cp = need == 1 ? lead : need == 2 ? lead & 0x1Fu : need == 3 ? lead & 0x0Fu : lead & 0x07u;
    int k;
    if (need == 0 || *at + (size_t)need > length) {
        return -1;
    }
    for (k = 1; k < need; k++) {
        if ((text[*at + (size_t)k] & 0xC0) != 0x80) {
            return -1;
        }
        cp = (cp << 6) | (text[*at + (size_t)k] & 0x3Fu);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        return -1;
    }
    *at += (size_t)need;
    return (int32_t)cp;
}

int krnn_begin(krnn_generator *g, const char *prime, size_t prime_len, uint64_t seed) {
    const unsigned char *text = (const unsigned char *)prime;
    size_t at = 0;
    if (!(g->params.temperature > 0) || g->params.top_k < 0 || !(g->params.top_p > 0 && g->params.top_p <= 1)) {
        return KRNN_ERROR_PARAMS;
    }
    if (!g->vocab.bytes) { /* every prime character must be in the vocabulary before anything is fed */
        while (at < prime_len) {
            size_t start = at;
            int32_t cp = next_code_point(text, prime_len, &at), id = 0;
            while (cp >= 0 && id < g->vocab.size && g->vocab.code_points[id] != (uint32_t)cp) {
                id++;
            }
            if (cp < 0 || id == g->vocab.size) {
                g->error_at = start;
                return KRNN_ERROR_PRIME;
            }
        }
    }
    krnn_rng_seed(&g->rng, seed);
    g->utf8.count = 0;
    g->model.reset(g->model.model);
    g->logits = g->model.feed(g->model.model, g->model.start_token);
    for (at = 0; at < prime_len;) {
        int32_t id;
        if (g->vocab.bytes) {
            id = text[at++];
        } else {
            int32_t cp = next_code_point(text, prime_len, &at);
            for (id = 0; g->vocab.code_points[id] != (uint32_t)cp; id++) {
            }
        }
        g->logits = g->model.feed(g->model.model, id);
    }
    return KRNN_OK;
}

size_t krnn_next(krnn_generator *g, int more, char *out, int32_t *token) {
    int32_t id = krnn_choose(g->logits, g->vocab.size, &g->rng, &g->params, g->work, g->order);
    size_t written = g->vocab.bytes ? krnn_utf8_feed(&g->utf8, (unsigned char)id, out)
                                    : put_code_point(g->vocab.code_points[id], out);
    if (token) {
        *token = id;
    }
    if (more) {
        g->logits = g->model.feed(g->model.model, id);
    }
    return written;
}
