/* SipHash-1-3 (Aumasson and Bernstein): a keyed hash for tables whose keys
 * come from clients (the rate-limit table, the cache store), so that
 * nobody can choose keys that collide without knowing the key. */
#ifndef RINGGATE_SIPHASH_H
#define RINGGATE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-1-3 under key k of in[0..len). */
uint64_t siphash13(const uint64_t k[2], const void *in, size_t len);

/* The same of the 8-byte little-endian `prefix` followed by in[0..len):
 * a small integer (a policy id) and a key hashed as one message. */
uint64_t siphash13_prefixed(const uint64_t k[2], uint64_t prefix, const void *in, size_t len);

#endif
