/* SipHash-1-3 (see siphash.h). */
#include "siphash.h"

#include <endian.h>
#include <stdbool.h>
#include <string.h>

struct sip {
    uint64_t v0, v1, v2, v3;
};

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static inline void sip_round(struct sip *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13) ^ s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16) ^ s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21) ^ s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17) ^ s->v2;
    s->v2 = rotl(s->v2, 32);
}

static inline void sip_word(struct sip *s, uint64_t m)
{
    s->v3 ^= m;
    sip_round(s);
    s->v0 ^= m;
}

static uint64_t sip13(const uint64_t k[2], bool has_prefix, uint64_t prefix, const void *in,
                      size_t len)
{
    struct sip s = {k[0] ^ 0x736f6d6570736575ull, k[1] ^ 0x646f72616e646f6dull,
                    k[0] ^ 0x6c7967656e657261ull, k[1] ^ 0x7465646279746573ull};
    const uint8_t *p = in;
    uint64_t m, last = (uint64_t)(len + (has_prefix ? 8 : 0)) << 56;
    size_t i;

    if (has_prefix) sip_word(&s, prefix);
    for (; len >= 8; p += 8, len -= 8) {
        memcpy(&m, p, 8);
        sip_word(&s, le64toh(m));
    }
    for (i = 0; i < len; i++)
        last |= (uint64_t)p[i] << (8 * i);
    sip_word(&s, last);
    s.v2 ^= 0xff;
    sip_round(&s);
    sip_round(&s);
    sip_round(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

uint64_t siphash13(const uint64_t k[2], const void *in, size_t len)
{
    return sip13(k, false, 0, in, len);
}

uint64_t siphash13_prefixed(const uint64_t k[2], uint64_t prefix, const void *in, size_t len)
{
    return sip13(k, true, prefix, in, len);
}
