/* base64url (RFC 4648 section 5) without padding, as JWS compact tokens and
 * JWKs use it. Pure functions, no allocation. */
#ifndef RINGGATE_BASE64URL_H
#define RINGGATE_BASE64URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes that `len` characters decode to (an upper bound when `len` is not a
 * valid length: 1 more than a multiple of 4). */
static inline size_t base64url_decoded_len(size_t len)
{
    return len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
}

/* Characters that `len` bytes encode to. */
static inline size_t base64url_encoded_len(size_t len)
{
    return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

/* True when `c` is one of the 64 characters of the alphabet. */
bool base64url_char(unsigned char c);

/* Decodes `len` characters into `out` (room for `cap` bytes) and sets
 * `*out_len`. False, with `out` in an unspecified state, on a character
 * outside the alphabet (padding included), a length of 1 mod 4, non-zero
 * unused bits in the last character (so each byte string has exactly one
 * encoding), or a result longer than `cap`. */
bool base64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* Encodes `len` bytes into `out` (base64url_encoded_len(len) bytes, no NUL
 * added). Returns that length. */
size_t base64url_encode(const uint8_t *in, size_t len, char *out);

#endif
