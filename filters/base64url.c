#include "base64url.h"

static const char alphabet[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63 for the alphabet, 0x80 for everything else: one OR over a group of
 * four tells whether any of them was invalid. */
#define X 0x80
/* clang-format off */
static const uint8_t values[256] = {
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, 62,  X,  X,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61,  X,  X,  X,  X,  X,  X,
     X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,  X,  X,  X,  X, 63,
     X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
};
/* clang-format on */
#undef X

bool base64url_char(unsigned char c)
{
    return values[c] < 64;
}

bool base64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t rest = len % 4, full = len - rest, n = 0;
    unsigned bad = 0;

    if (rest == 1 || base64url_decoded_len(len) > cap) return false;
    for (size_t i = 0; i < full; i += 4) {
        unsigned a = values[s[i]], b = values[s[i + 1]], c = values[s[i + 2]], d = values[s[i + 3]];
        uint32_t v = a << 18 | b << 12 | c << 6 | d;

        bad |= a | b | c | d;
        out[n++] = (uint8_t)(v >> 16);
        out[n++] = (uint8_t)(v >> 8);
        out[n++] = (uint8_t)v;
    }
    if (bad & 0x80) return false;
    if (rest) {
        unsigned a = values[s[full]], b = values[s[full + 1]];
        unsigned c = rest == 3 ? values[s[full + 2]] : 0;

        /* The unused low bits of the last character must be zero. */
        if ((a | b | c) & 0x80 || (rest == 2 ? b & 0x0f : c & 0x03)) return false;
        out[n++] = (uint8_t)(a << 2 | b >> 4);
        if (rest == 3) out[n++] = (uint8_t)(b << 4 | c >> 2);
    }
    *out_len = n;
    return true;
}

size_t base64url_encode(const uint8_t *in, size_t len, char *out)
{
    size_t n = 0, i = 0;

    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

        out[n++] = alphabet[v >> 18];
        out[n++] = alphabet[v >> 12 & 63];
        out[n++] = alphabet[v >> 6 & 63];
        out[n++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        out[n++] = alphabet[in[i] >> 2];
        out[n++] = alphabet[(in[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

        out[n++] = alphabet[v >> 10];
        out[n++] = alphabet[v >> 4 & 63];
        out[n++] = alphabet[(v & 15) << 2];
    }
    return n;
}
