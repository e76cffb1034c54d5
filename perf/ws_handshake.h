/* The WebSocket handshake's arithmetic for the perf tools (ws_client.c,
 * ws_echo.c): SHA-1 and base64 of Sec-WebSocket-Accept, kept dependency-free
 * so the tools build with a bare `cc`. */
#ifndef RINGGATE_PERF_WS_HANDSHAKE_H
#define RINGGATE_PERF_WS_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    unsigned char block[64];
    size_t total = len + 9, nblocks = (total + 63) / 64;

    for (size_t b = 0; b < nblocks; b++) {
        uint32_t wd[80], a, bb, c, d, e;
        for (size_t i = 0; i < 64; i++) {
            size_t pos = b * 64 + i;
            unsigned char v;
            if (pos < len)
                v = msg[pos];
            else if (pos == len)
                v = 0x80;
            else if (pos >= nblocks * 64 - 8)
                v = (unsigned char)(((uint64_t)len * 8) >> (8 * (nblocks * 64 - 1 - pos)));
            else
                v = 0;
            block[i] = v;
        }
        for (int i = 0; i < 16; i++)
            wd[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
                    (uint32_t)block[4 * i + 2] << 8 | block[4 * i + 3];
        for (int i = 16; i < 80; i++)
            wd[i] = rol(wd[i - 3] ^ wd[i - 8] ^ wd[i - 14] ^ wd[i - 16], 1);
        a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k, t;
            if (i < 20)
                f = (bb & c) | (~bb & d), k = 0x5A827999;
            else if (i < 40)
                f = bb ^ c ^ d, k = 0x6ED9EBA1;
            else if (i < 60)
                f = (bb & c) | (bb & d) | (c & d), k = 0x8F1BBCDC;
            else
                f = bb ^ c ^ d, k = 0xCA62C1D6;
            t = rol(a, 5) + f + e + k + wd[i];
            e = d, d = c, c = rol(bb, 30), bb = a, a = t;
        }
        h[0] += a, h[1] += bb, h[2] += c, h[3] += d, h[4] += e;
    }
    for (int i = 0; i < 5; i++) {
        out[4 * i] = h[i] >> 24;
        out[4 * i + 1] = h[i] >> 16;
        out[4 * i + 2] = h[i] >> 8;
        out[4 * i + 3] = h[i];
    }
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = 0;
}

#endif
