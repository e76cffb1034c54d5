/* Serving files from a route's `static.root`: mapping a request path onto
 * the root, the Content-Type table and Range parsing. Pure functions: no
 * I/O, no allocation. */
#include "static.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define INDEX_FILE "index.html"

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes one byte of the path at *i (a plain byte or a %XX escape) and
 * advances *i. Returns the byte, or -1 when the byte may not appear in a
 * decoded segment: a bad escape, NUL or another control character, a
 * backslash, or an encoded '/'. A plain '/' is returned as is. */
static int decode_byte(const char *path, size_t len, size_t *i)
{
    unsigned char c = (unsigned char)path[*i];

    if (c == '%') {
        int hi, lo;

        if (len - *i < 3) return -1;
        hi = hex_value((unsigned char)path[*i + 1]);
        lo = hex_value((unsigned char)path[*i + 2]);
        if (hi < 0 || lo < 0) return -1;
        c = (unsigned char)(hi << 4 | lo);
        *i += 3;
        if (c == '/') /* "%2F" would hide a segment boundary */
            return -1;
    } else {
        *i += 1;
        if (c == '/') return '/';
    }
    if (c < 0x20 || c == 0x7f || c == '\\') return -1;
    return c;
}

int static_map_path(const char *root, const char *path, size_t path_len, char *out, size_t out_size)
{
    size_t root_len = strlen(root);
    size_t n, i = 0;
    bool ends_with_slash = true, too_long = false;

    if (out_size > (size_t)INT_MAX) out_size = (size_t)INT_MAX;
    if (out_size) out[0] = '\0';

    /* The query (and a fragment, should one arrive) is not part of the path. */
    for (size_t k = 0; k < path_len; k++) {
        if (path[k] == '?' || path[k] == '#') {
            path_len = k;
            break;
        }
    }
    if (path_len == 0 || path[0] != '/') return STATIC_BAD_PATH;

    while (root_len > 0 && root[root_len - 1] == '/')
        root_len--;
    if (root_len >= out_size)
        too_long = true;
    else
        memcpy(out, root, root_len);
    n = root_len;

    /* Writes stop once out is full, but the whole path is still checked so
     * that a bad path is always a 400, whatever its length. */
    while (i < path_len) {
        size_t seg_len = 0, dots = 0;

        if (path[i] == '/') { /* repeated '/' collapse into one */
            i++;
            ends_with_slash = true;
            continue;
        }
        if (n + 1 < out_size)
            out[n] = '/';
        else
            too_long = true;
        n++;
        while (i < path_len && path[i] != '/') {
            int c = decode_byte(path, path_len, &i);

            if (c < 0) return STATIC_BAD_PATH;
            if (n + 1 < out_size)
                out[n] = (char)c;
            else
                too_long = true;
            n++;
            seg_len++;
            dots += c == '.';
        }
        if (seg_len <= 2 && dots == seg_len) /* "." or ".." */
            return STATIC_BAD_PATH;
        ends_with_slash = false;
    }
    if (too_long) return STATIC_TOO_LONG;

    if (ends_with_slash) { /* "/" or "/dir/": the directory's index */
        if (n + 1 + sizeof INDEX_FILE > out_size) return STATIC_TOO_LONG;
        out[n++] = '/';
        memcpy(out + n, INDEX_FILE, sizeof INDEX_FILE);
        n += sizeof INDEX_FILE - 1;
    }
    out[n] = '\0';
    return (int)n;
}

struct mime_type {
    const char *ext;
    const char *type;
};

static const struct mime_type mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
};

const char *static_content_type(const char *file_path)
{
    const char *base = strrchr(file_path, '/');
    const char *dot;

    base = base ? base + 1 : file_path;
    dot = strrchr(base, '.');
    /* No extension, or a dot file such as ".htaccess". */
    if (dot && dot != base && dot[1] != '\0') {
        for (size_t k = 0; k < sizeof mime_types / sizeof mime_types[0]; k++)
            if (strcasecmp(dot + 1, mime_types[k].ext) == 0) return mime_types[k].type;
    }
    return "application/octet-stream";
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses 1*DIGIT at s[*i..end); saturates at UINT64_MAX (a position beyond
 * any file). Returns false when there is no digit. */
static bool parse_digits(const char *s, size_t end, size_t *i, uint64_t *v)
{
    size_t start = *i;
    uint64_t x = 0;

    while (*i < end && s[*i] >= '0' && s[*i] <= '9') {
        unsigned d = (unsigned)(s[*i] - '0');

        x = (x > (UINT64_MAX - d) / 10) ? UINT64_MAX : x * 10 + d;
        (*i)++;
    }
    *v = x;
    return *i > start;
}

enum range_result static_parse_range(const char *value, size_t len, uint64_t size, uint64_t *first,
                                     uint64_t *last)
{
    static const char unit[] = "bytes=";
    size_t start, end, spec_start = 0, spec_end = 0, n_specs = 0, i;
    uint64_t a, b;

    *first = 0;
    *last = 0;
    if (!value) return RANGE_NONE;
    start = 0;
    end = len;
    while (start < end && is_ows(value[start]))
        start++;
    while (end > start && is_ows(value[end - 1]))
        end--;
    if (end - start < sizeof unit - 1 || strncasecmp(value + start, unit, sizeof unit - 1) != 0)
        return RANGE_NONE;
    start += sizeof unit - 1;

    /* range-set = 1#range-spec: empty list elements are allowed and
     * ignored; more than one real element is several ranges. */
    i = start;
    while (i <= end) {
        size_t e = i, s0, s1;

        while (e < end && value[e] != ',')
            e++;
        s0 = i;
        s1 = e;
        while (s0 < s1 && is_ows(value[s0]))
            s0++;
        while (s1 > s0 && is_ows(value[s1 - 1]))
            s1--;
        if (s1 > s0) {
            if (++n_specs > 1) return RANGE_NONE;
            spec_start = s0;
            spec_end = s1;
        }
        i = e + 1;
    }
    if (n_specs != 1) return RANGE_NONE;

    i = spec_start;
    if (value[i] == '-') { /* suffix-range: the last b bytes */
        i++;
        if (!parse_digits(value, spec_end, &i, &b) || i != spec_end) return RANGE_NONE;
        if (b == 0 || size == 0) return RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return RANGE_OK;
    }
    if (!parse_digits(value, spec_end, &i, &a) || i == spec_end || value[i] != '-')
        return RANGE_NONE;
    i++;
    if (i == spec_end) {
        b = UINT64_MAX; /* "first-": to the end */
    } else if (!parse_digits(value, spec_end, &i, &b) || i != spec_end || b < a) {
        return RANGE_NONE;
    }
    if (a >= size) return RANGE_UNSATISFIABLE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return RANGE_OK;
}
