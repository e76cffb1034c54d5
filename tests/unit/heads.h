/* HTTP heads for unit tests, written in C strings with \n line ends. */
#ifndef RINGGATE_TEST_HEADS_H
#define RINGGATE_TEST_HEADS_H

#include <stddef.h>

/* text with every \n made \r\n, and the empty line that ends a head added;
 * returns the length written to out (cut short when out is too small). */
static size_t crlf(char *out, size_t cap, const char *text)
{
    size_t n = 0;

    for (; *text && n + 4 < cap; text++) {
        if (*text == '\n') out[n++] = '\r';
        out[n++] = *text;
    }
    out[n++] = '\r';
    out[n++] = '\n';
    return n;
}

#endif
