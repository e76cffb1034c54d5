/* Serving files from a route's `static.root`: the pure parts (mapping a
 * request path onto the root, Content-Type, Range). The I/O is driven by
 * the connection through the worker's ring. */
#ifndef RINGGATE_STATIC_H
#define RINGGATE_STATIC_H

#include <stddef.h>
#include <stdint.h>

#define STATIC_BAD_PATH (-1) /* answer 400: NUL, "..", encoded '/', bad %XX */
#define STATIC_TOO_LONG (-2) /* answer 414 */

/* Maps the (still percent-encoded) request path onto root: percent-decodes,
 * collapses repeated '/', rejects any "." or ".." segment, NUL, "%2F" and
 * backslash, so the result can never leave root. A path ending in '/' gets
 * "index.html" appended. Writes the NUL-terminated file path into out;
 * returns its length or one of the errors above. */
int static_map_path(const char *root, const char *path, size_t path_len, char *out,
                    size_t out_size);

/* Content-Type for a file name, by extension (case-insensitive);
 * "application/octet-stream" when unknown. Text types carry
 * "; charset=utf-8". */
const char *static_content_type(const char *file_path);

enum range_result {
    RANGE_NONE,          /* no usable Range: send the whole file (200) */
    RANGE_OK,            /* one satisfiable range: 206 */
    RANGE_UNSATISFIABLE, /* 416 with Content-Range: bytes 0-size-1... "* /size" */
};

/* Parses a Range header value ("bytes=0-99", "bytes=100-", "bytes=-500")
 * against a file of `size` bytes. Only a single range is served; several
 * ranges, another unit or a malformed value give RANGE_NONE (RFC 9110
 * allows ignoring Range). *first and *last are inclusive. */
enum range_result static_parse_range(const char *value, size_t len, uint64_t size,
                                     uint64_t *first, uint64_t *last);

#endif
