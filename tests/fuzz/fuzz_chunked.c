/* libFuzzer target for the chunked decoder of gateway/http1.c alone.
 *
 * The first input byte seeds how the rest is cut; the rest is the body as
 * it comes off the wire. It is decoded three ways and the answers must be
 * the same:
 *   - in one call over the whole input;
 *   - in random pieces (sizes drawn from the seed, 1 byte up to the rest);
 *   - by the reference decoder below: a direct reading of the RFC 9112 7.1
 *     grammar, with the decoder's documented limits (sizes up to 2^62, size
 *     and trailer lines up to 4 KiB with their CRLF), written for clarity
 *     instead of speed, over the whole input at once.
 * An answer is: an error; or "needs more" with every byte consumed; or
 * done, with how many bytes the body took. Either of the last two carries
 * the data decoded so far. Each piece is an exact-size heap copy, so an
 * overread trips AddressSanitizer, and the bytes after a finished body must
 * come back untouched. */
#include "http1.h"
#include "fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_MAX_SIZE (UINT64_C(1) << 62)
#define REF_MAX_LINE 4096

enum verdict { NEEDS_MORE, DONE, FAILED };

struct answer {
    enum verdict verdict;
    size_t consumed; /* DONE: bytes of the body; NEEDS_MORE: all of them */
    char *data;
    size_t data_len;
};

static char *heap_copy(const uint8_t *data, size_t n)
{
    char *p = malloc(n ? n : 1);

    REQUIRE(p != NULL);
    if (n) memcpy(p, data, n);
    return p;
}

/* ---- the decoder under test, fed in pieces ------------------------------- */

/* A small deterministic generator, so a crash reproduces from its input. */
static uint32_t next_random(uint32_t *state)
{
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
}

static size_t piece_size(uint32_t *state, size_t left)
{
    switch (next_random(state) % 4) {
    case 0:
        return 1;
    case 1:
        return left;
    default:
        return 1 + next_random(state) % left;
    }
}

#define WHOLE 0    /* the whole input in one call */
#define BYTEWISE 1 /* one byte per call */

/* cut: WHOLE, BYTEWISE, or the seed of random piece sizes. */
static struct answer decode_in_pieces(const uint8_t *in, size_t size, uint32_t cut)
{
    struct chunked_decoder d = {0};
    struct answer out = {NEEDS_MORE, 0, malloc(size ? size : 1), 0};
    uint32_t state = cut;

    REQUIRE(out.data != NULL);
    while (out.consumed < size) {
        size_t left = size - out.consumed;
        size_t piece = cut == WHOLE ? left : cut == BYTEWISE ? 1 : piece_size(&state, left);
        size_t len = piece, data_len = SIZE_MAX;
        char *buf = heap_copy(in + out.consumed, piece);
        int rc = chunked_decode(&d, buf, &len, &data_len);

        REQUIRE(rc == 0 || rc == CHUNKED_DONE || rc == HTTP_ERROR);
        REQUIRE(len <= piece && data_len <= len);
        REQUIRE(rc != 0 || len == piece);
        if (rc == CHUNKED_DONE) /* what follows the body is left alone */
            REQUIRE(memcmp(buf + len, in + out.consumed + len, piece - len) == 0);
        memcpy(out.data + out.data_len, buf, data_len);
        out.data_len += data_len;
        out.consumed += len;
        free(buf);
        if (rc == HTTP_ERROR) out.verdict = FAILED;
        if (rc == CHUNKED_DONE) out.verdict = DONE;
        if (rc != 0) {
            /* Finished decoders stay finished, whatever comes next. */
            size_t zero = 0, dl = 1;
            char none[1];
            REQUIRE(chunked_decode(&d, none, &zero, &dl) == rc && zero == 0 && dl == 0);
            break;
        }
    }
    return out;
}

/* ---- the reference decoder ----------------------------------------------- */

struct reader {
    const uint8_t *p;
    size_t len, at;
    size_t line_start; /* where the current size or trailer line began */
};

enum step { OK, MORE, BAD };

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool is_tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Control characters but HTAB: never inside a line. */
static bool is_ctl(uint8_t c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* The next byte of a line, or why there is none. Lines are bounded. */
static enum step line_byte(struct reader *r, uint8_t *c)
{
    if (r->at >= r->len) return MORE;
    if (r->at - r->line_start + 1 > REF_MAX_LINE) return BAD;
    *c = r->p[r->at++];
    return OK;
}

/* The LF that must follow a CR. */
static enum step line_end(struct reader *r)
{
    uint8_t c;
    enum step s = line_byte(r, &c);

    return s != OK ? s : c == '\n' ? OK : BAD;
}

/* chunk-size [ BWS ";" ext ] CRLF, the extension being anything without
 * control characters. */
static enum step size_line(struct reader *r, uint64_t *size)
{
    uint8_t c;
    enum step s;
    int digits = 0;

    r->line_start = r->at;
    *size = 0;
    for (;;) {
        if ((s = line_byte(r, &c)) != OK) return s;
        if (hex_digit(c) < 0) break;
        if (*size > (REF_MAX_SIZE - (uint64_t)hex_digit(c)) / 16) return BAD;
        *size = *size * 16 + (uint64_t)hex_digit(c);
        digits++;
    }
    if (digits == 0) return BAD;
    while (c == ' ' || c == '\t') { /* BWS: only before an extension */
        if ((s = line_byte(r, &c)) != OK) return s;
        if (c == '\r') return BAD;
    }
    if (c == ';') {
        do {
            if ((s = line_byte(r, &c)) != OK) return s;
            if (c != '\r' && is_ctl(c)) return BAD;
        } while (c != '\r');
    }
    return c == '\r' ? line_end(r) : BAD;
}

/* *( name ":" value CRLF ) CRLF; true in *last for the empty line. */
static enum step trailer_line(struct reader *r, bool *last)
{
    uint8_t c;
    enum step s;

    r->line_start = r->at;
    if ((s = line_byte(r, &c)) != OK) return s;
    *last = c == '\r';
    if (*last) return line_end(r);
    if (!is_tchar(c)) return BAD;
    do {
        if ((s = line_byte(r, &c)) != OK) return s;
        if (c != ':' && !is_tchar(c)) return BAD;
    } while (c != ':');
    do {
        if ((s = line_byte(r, &c)) != OK) return s;
        if (c != '\r' && is_ctl(c)) return BAD;
    } while (c != '\r');
    return line_end(r);
}

/* The data of a chunk, then its CRLF. */
static enum step chunk_data(struct reader *r, uint64_t size, struct answer *out)
{
    size_t avail = r->len - r->at, take = avail < size ? avail : (size_t)size;

    memcpy(out->data + out->data_len, r->p + r->at, take);
    out->data_len += take;
    r->at += take;
    if (take < size) return MORE;
    for (const char *want = "\r\n"; *want; want++) {
        if (r->at >= r->len) return MORE;
        if (r->p[r->at++] != (uint8_t)*want) return BAD;
    }
    return OK;
}

static enum step reference_body(struct reader *r, struct answer *out)
{
    uint64_t size;
    bool last = false;
    enum step s;

    for (;;) {
        if ((s = size_line(r, &size)) != OK) return s;
        if (size == 0) break;
        if ((s = chunk_data(r, size, out)) != OK) return s;
    }
    while (!last)
        if ((s = trailer_line(r, &last)) != OK) return s;
    return OK;
}

static struct answer decode_reference(const uint8_t *in, size_t size)
{
    struct reader r = {in, size, 0, 0};
    struct answer out = {NEEDS_MORE, 0, malloc(size ? size : 1), 0};
    enum step s;

    REQUIRE(out.data != NULL);
    s = reference_body(&r, &out);
    out.verdict = s == OK ? DONE : s == BAD ? FAILED : NEEDS_MORE;
    out.consumed = r.at;
    return out;
}

/* ---- comparing --------------------------------------------------------- */

static void require_same(const struct answer *a, const struct answer *b)
{
    REQUIRE(a->verdict == b->verdict);
    if (a->verdict == FAILED) return; /* data before the error is unspecified */
    REQUIRE(a->consumed == b->consumed);
    REQUIRE(a->data_len == b->data_len);
    REQUIRE(memcmp(a->data, b->data, a->data_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint32_t seed = data[0] | 0x100u; /* never WHOLE or BYTEWISE */
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    struct answer whole = decode_in_pieces(body, n, WHOLE);
    struct answer pieces = decode_in_pieces(body, n, seed);
    struct answer bytes = decode_in_pieces(body, n, BYTEWISE);
    struct answer ref = decode_reference(body, n);

    REQUIRE(whole.verdict != NEEDS_MORE || whole.consumed == n);
    require_same(&ref, &whole);
    require_same(&ref, &pieces);
    require_same(&ref, &bytes);
    free(whole.data);
    free(pieces.data);
    free(bytes.data);
    free(ref.data);
    return 0;
}
