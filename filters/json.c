/* Strict RFC 8259 JSON reader into a flat tree, and exact value arithmetic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define EXPONENT_DIGITS_MAX 9 /* |exponent| <= 999999999 keeps arithmetic exact in int64_t */

struct parser {
    const char *text;
    size_t len;
    size_t at; /* next byte to read */
    struct json_value *vals;
    uint32_t nvals, cap;
    uint32_t *keys; /* sorted member offsets of closed objects */
    size_t nkeys;
    char *chars; /* decoded strings that had escapes */
    size_t nchars;
    struct json_error *err;
};

/* ---- exact decimal view of a number's text ---- */

/* The value is the digit sequence ip[0..ilen) fp[0..flen) read as an
 * integer, times 10^(exp - flen). */
struct decimal {
    const char *ip, *fp;
    uint32_t ilen, flen;
    uint32_t first, last; /* first and last non-zero digit; first > last for zero */
    int64_t exp;
    bool neg;
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int digit_at(const struct decimal *d, uint32_t k)
{
    return (k < d->ilen ? d->ip[k] : d->fp[k - d->ilen]) - '0';
}

/* Power of ten that digit k stands for. */
static int64_t power_at(const struct decimal *d, uint32_t k)
{
    return d->exp + (int64_t)d->ilen - 1 - (int64_t)k;
}

static bool decimal_zero(const struct decimal *d)
{
    return d->first > d->last;
}

/* text is a number json_parse accepted. */
static void decimal_of(const char *t, size_t n, struct decimal *d)
{
    size_t i = 0;

    memset(d, 0, sizeof *d);
    d->neg = t[0] == '-';
    i += d->neg;
    d->ip = t + i;
    while (i < n && is_digit(t[i]))
        i++;
    d->ilen = (uint32_t)(t + i - d->ip);
    d->fp = t + i;
    if (i < n && t[i] == '.') {
        d->fp = t + ++i;
        while (i < n && is_digit(t[i]))
            i++;
        d->flen = (uint32_t)(t + i - d->fp);
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        bool neg = t[++i] == '-';
        if (t[i] == '-' || t[i] == '+') i++;
        for (; i < n; i++)
            d->exp = d->exp * 10 + (t[i] - '0');
        if (neg) d->exp = -d->exp;
    }
    uint32_t total = d->ilen + d->flen;
    d->first = 0;
    while (d->first < total && digit_at(d, d->first) == 0)
        d->first++;
    d->last = total;
    while (d->last > d->first && digit_at(d, d->last - 1) == 0)
        d->last--;
    if (d->first == total) {
        d->first = 1;
        d->last = 0;
    } else {
        d->last--;
    }
}

static void decimal_of_value(const struct json_value *v, struct decimal *d)
{
    decimal_of(v->str, v->len, d);
}

static bool decimal_integral(const struct decimal *d)
{
    return decimal_zero(d) || power_at(d, d->last) >= 0;
}

/* Nearest double. With up to 15 digits and 10^+-22, both factors are exact
 * doubles and one operation rounds correctly (Clinger's fast path); other
 * numbers go through strtod with a short exponent-only string, so the
 * locale's decimal point never matters and long texts need no copy. */
static double decimal_double(const struct decimal *d)
{
    static const double exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    char buf[48];
    size_t n = 0;
    uint32_t k = d->first;

    if (decimal_zero(d)) return d->neg ? -0.0 : 0.0;
    int64_t e = power_at(d, d->last);
    if (d->last - d->first < 15 && e >= -22 && e <= 22) {
        uint64_t m = 0;
        for (; k <= d->last; k++)
            m = m * 10 + (uint64_t)digit_at(d, k);
        double v = e >= 0 ? (double)m * exact[e] : (double)m / exact[-e];
        return d->neg ? -v : v;
    }
    if (d->neg) buf[n++] = '-';
    for (; k <= d->last && n < 20; k++)
        buf[n++] = (char)('0' + digit_at(d, k));
    snprintf(buf + n, sizeof buf - n, "e%lld", (long long)power_at(d, k - 1));
    return strtod(buf, NULL);
}

static int magnitude_cmp(const struct decimal *a, const struct decimal *b)
{
    int64_t pa = power_at(a, a->first), pb = power_at(b, b->first);
    uint32_t i = a->first, j = b->first;

    if (pa != pb) return pa < pb ? -1 : 1;
    for (; i <= a->last && j <= b->last; i++, j++) {
        int da = digit_at(a, i), db = digit_at(b, j);
        if (da != db) return da < db ? -1 : 1;
    }
    if (i <= a->last) return 1;
    return j <= b->last ? -1 : 0;
}

int json_number_cmp(const struct json_value *a, const struct json_value *b)
{
    struct decimal da, db;

    decimal_of_value(a, &da);
    decimal_of_value(b, &db);
    int sa = decimal_zero(&da) ? 0 : da.neg ? -1 : 1;
    int sb = decimal_zero(&db) ? 0 : db.neg ? -1 : 1;
    if (sa != sb) return sa < sb ? -1 : 1;
    if (sa == 0) return 0;
    int m = magnitude_cmp(&da, &db);
    return sa > 0 ? m : -m;
}

uint32_t json_number_digits(const struct json_value *n)
{
    struct decimal d;

    decimal_of_value(n, &d);
    return decimal_zero(&d) ? 0 : d.last - d.first + 1;
}

static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m)
{
    return (uint64_t)((unsigned __int128)a * b % m);
}

static uint64_t powmod(uint64_t base, uint64_t e, uint64_t m)
{
    uint64_t r = 1 % m;

    base %= m;
    for (; e; e >>= 1) {
        if (e & 1) r = mulmod(r, base, m);
        base = mulmod(base, base, m);
    }
    return r;
}

/* n = A * 10^ea and divisor = B * 10^eb with A, B free of trailing zeros:
 * if ea < eb, n / divisor = A / (B * 10^(eb-ea)) needs 10 | A, impossible;
 * otherwise it is A * 10^(ea-eb) mod B, computed digit by digit. */
int json_number_multiple_of(const struct json_value *n, const struct json_value *divisor)
{
    struct decimal dn, dd;
    uint64_t b = 0, r = 0;

    decimal_of_value(n, &dn);
    decimal_of_value(divisor, &dd);
    if (decimal_zero(&dd) || dd.neg || dd.last - dd.first + 1 > 18) return -1;
    if (decimal_zero(&dn)) return 1;
    for (uint32_t k = dd.first; k <= dd.last; k++)
        b = b * 10 + (uint64_t)digit_at(&dd, k);
    int64_t ea = power_at(&dn, dn.last), eb = power_at(&dd, dd.last);
    if (ea < eb) return 0;
    for (uint32_t k = dn.first; k <= dn.last; k++)
        r = (r * 10 + (uint64_t)digit_at(&dn, k)) % b;
    return mulmod(r, powmod(10, (uint64_t)(ea - eb), b), b) == 0;
}

bool json_number_u64(const struct json_value *n, uint64_t *out)
{
    struct decimal d;
    uint64_t v = 0;

    decimal_of_value(n, &d);
    if (decimal_zero(&d)) {
        *out = 0;
        return true;
    }
    if (d.neg || !decimal_integral(&d)) return false;
    if (power_at(&d, d.first) >= 20) {
        *out = UINT64_MAX;
        return true;
    }
    for (int64_t p = power_at(&d, d.first), k = d.first; p >= 0; p--, k++) {
        uint64_t digit = k <= d.last ? (uint64_t)digit_at(&d, (uint32_t)k) : 0;
        if (v > (UINT64_MAX - digit) / 10) {
            *out = UINT64_MAX;
            return true;
        }
        v = v * 10 + digit;
    }
    *out = v;
    return true;
}

/* ---- comparisons ---- */

static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c) return c < 0 ? -1 : 1;
    return alen == blen ? 0 : alen < blen ? -1 : 1;
}

int json_compare(const struct json_value *a, const struct json_value *b)
{
    if (a->type != b->type) return a->type < b->type ? -1 : 1;
    if (a->type == JSON_NUMBER) return json_number_cmp(a, b);
    if (a->type == JSON_STRING) return bytes_cmp(a->str, a->len, b->str, b->len);
    if (a->type != JSON_ARRAY && a->type != JSON_OBJECT) return 0;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    if (a->type == JSON_ARRAY) {
        const struct json_value *x = json_first(a), *y = json_first(b);
        for (uint32_t i = 0; i < a->len; i++, x = json_next(x), y = json_next(y)) {
            int c = json_compare(x, y);
            if (c) return c;
        }
        return 0;
    }
    for (uint32_t i = 0; i < a->len; i++) {
        const struct json_value *ka = a + a->members[i], *kb = b + b->members[i];
        int c = bytes_cmp(ka->str, ka->len, kb->str, kb->len);
        if (c == 0) c = json_compare(ka + 1, kb + 1);
        if (c) return c;
    }
    return 0;
}

bool json_equal(const struct json_value *a, const struct json_value *b)
{
    return json_compare(a, b) == 0;
}

const struct json_value *json_object_get(const struct json_value *obj, const char *key, size_t len)
{
    uint32_t lo = 0, hi = obj->len;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct json_value *k = obj + obj->members[mid];
        int c = bytes_cmp(k->str, k->len, key, len);
        if (c == 0) return k + 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- sorting without allocation (glibc's qsort may malloc) ---- */

typedef int (*cmp_fn)(uint32_t a, uint32_t b, const void *ctx);

static void sift_down(uint32_t *a, size_t root, size_t n, cmp_fn cmp, const void *ctx)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && cmp(a[child], a[child + 1], ctx) < 0) child++;
        if (cmp(a[root], a[child], ctx) >= 0) return;
        uint32_t t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

static void heap_sort(uint32_t *a, size_t n, cmp_fn cmp, const void *ctx)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n, cmp, ctx);
    for (size_t end = n; end-- > 1;) {
        uint32_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end, cmp, ctx);
    }
}

static int item_cmp(uint32_t a, uint32_t b, const void *ctx)
{
    const struct json_value *base = ctx;

    return json_compare(base + a, base + b);
}

static uint32_t item_index(const struct json_value *array, uint32_t offset)
{
    const struct json_value *v = json_first(array);
    uint32_t i = 0;

    while (v != array + offset) {
        v = json_next(v);
        i++;
    }
    return i;
}

bool json_unique(const struct json_value *array, uint32_t *scratch, uint32_t *first,
                 uint32_t *second)
{
    const struct json_value *v = json_first(array);
    uint32_t n = array->len;

    for (uint32_t i = 0; i < n; i++, v = json_next(v))
        scratch[i] = (uint32_t)(v - array);
    heap_sort(scratch, n, item_cmp, array);
    for (uint32_t i = 1; i < n; i++) {
        if (json_compare(array + scratch[i - 1], array + scratch[i]) == 0) {
            uint32_t x = item_index(array, scratch[i - 1]), y = item_index(array, scratch[i]);
            *first = x < y ? x : y;
            *second = x < y ? y : x;
            return false;
        }
    }
    return true;
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s (n >= 1 bytes available), or 0. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;

    if (c < 0x80) return 1;
    if (c < 0xC2 || c > 0xF4)
        return 0; /* continuation byte, overlong 2-byte lead, or beyond U+10FFFF */
    if (c < 0xE0) return n >= 2 && s[1] >= lo && s[1] <= hi ? 2 : 0;
    if (c == 0xE0)
        lo = 0xA0; /* overlong */
    else if (c == 0xED)
        hi = 0x9F; /* UTF-16 surrogates */
    else if (c == 0xF0)
        lo = 0x90; /* overlong */
    else if (c == 0xF4)
        hi = 0x8F; /* beyond U+10FFFF */
    size_t len = c < 0xF0 ? 3 : 4;
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

size_t json_utf8_count(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* ---- the parser ---- */

static int fail(struct parser *p, size_t at, const char *message)
{
    p->err->offset = at;
    p->err->message = message;
    return -1;
}

static int fail_end(struct parser *p)
{
    return fail(p, p->len, "unexpected end of input");
}

static void skip_space(struct parser *p)
{
    while (p->at < p->len) {
        char c = p->text[p->at];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
        p->at++;
    }
}

/* NULL cannot happen (see values_cap()); the check keeps memory safety from
 * resting on that argument alone. */
static struct json_value *new_value(struct parser *p, uint8_t type)
{
    if (p->nvals == p->cap) {
        fail(p, p->at, "document too complex");
        return NULL;
    }
    struct json_value *v = &p->vals[p->nvals++];

    memset(v, 0, sizeof *v);
    v->type = type;
    v->pos = (uint32_t)p->at;
    v->size = 1;
    return v;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The four hex digits at text[at]: 0..0xFFFF, or -1 with the error set. */
static long hex4(struct parser *p, size_t at)
{
    long u = 0;

    for (size_t i = at; i < at + 4; i++) {
        if (i >= p->len) return fail_end(p);
        int h = hex_value(p->text[i]);
        if (h < 0) return fail(p, i, "invalid \\u escape");
        u = u * 16 + h;
    }
    return u;
}

/* Length of the valid escape at text[at] == '\\', or -1. *cp gets the code point. */
static long escape(struct parser *p, size_t at, uint32_t *cp)
{
    static const char plain[] = "\"\\/bfnrt", value[] = "\"\\/\b\f\n\r\t";

    if (at + 1 >= p->len) return fail_end(p);
    char c = p->text[at + 1];
    const char *e = c ? strchr(plain, c) : NULL;
    if (e) {
        *cp = (unsigned char)value[e - plain];
        return 2;
    }
    if (c != 'u') return fail(p, at + 1, "invalid escape");
    long u = hex4(p, at + 2);
    if (u < 0) return -1;
    if (u >= 0xDC00 && u <= 0xDFFF) return fail(p, at, "lone low surrogate escape");
    if (u < 0xD800 || u > 0xDBFF) {
        *cp = (uint32_t)u;
        return 6;
    }
    if (at + 6 >= p->len || (p->text[at + 6] == '\\' && at + 7 >= p->len)) return fail_end(p);
    if (p->text[at + 6] != '\\' || p->text[at + 7] != 'u')
        return fail(p, at, "lone high surrogate escape");
    long lo = hex4(p, at + 8);
    if (lo < 0) return -1;
    if (lo < 0xDC00 || lo > 0xDFFF) return fail(p, at, "lone high surrogate escape");
    *cp = 0x10000 + (((uint32_t)u - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
    return 12;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Second pass over a string already checked: decode its escapes. */
static void decode_string(struct parser *p, size_t from, size_t to, struct json_value *v)
{
    char *out = p->chars + p->nchars;
    size_t n = 0;

    for (size_t i = from; i < to;) {
        uint32_t cp;
        if (p->text[i] != '\\') {
            out[n++] = p->text[i++];
            continue;
        }
        i += (size_t)escape(p, i, &cp);
        n += utf8_encode(cp, out + n);
    }
    v->str = out;
    v->len = (uint32_t)n;
    p->nchars += n;
}

static int parse_string(struct parser *p, struct json_value *v)
{
    size_t from = p->at + 1, i = from;
    bool escaped = false;

    for (;;) {
        if (i >= p->len) return fail_end(p);
        unsigned char c = (unsigned char)p->text[i];
        if (c == '"') break;
        if (c < 0x20) return fail(p, i, "control character in string");
        if (c == '\\') {
            uint32_t cp;
            long n = escape(p, i, &cp);
            if (n < 0) return -1;
            escaped = true;
            i += (size_t)n;
            continue;
        }
        size_t n = utf8_sequence((const unsigned char *)p->text + i, p->len - i);
        if (n == 0) return fail(p, i, "invalid UTF-8");
        i += n;
    }
    if (escaped) {
        decode_string(p, from, i, v);
    } else {
        v->str = p->text + from;
        v->len = (uint32_t)(i - from);
    }
    p->at = i + 1;
    return 0;
}

static size_t skip_digits(struct parser *p, size_t i)
{
    while (i < p->len && is_digit(p->text[i]))
        i++;
    return i;
}

/* At least one digit at i, or an error. */
static int need_digit(struct parser *p, size_t i)
{
    if (i >= p->len) return fail_end(p);
    return is_digit(p->text[i]) ? 0 : fail(p, i, "expected a digit");
}

static int parse_number(struct parser *p, struct json_value *v)
{
    size_t i = p->at;
    struct decimal d;

    if (p->text[i] == '-') i++;
    if (need_digit(p, i) < 0) return -1;
    if (p->text[i] == '0') {
        if (++i < p->len && is_digit(p->text[i])) return fail(p, i - 1, "leading zero in number");
    } else {
        i = skip_digits(p, i);
    }
    if (i < p->len && p->text[i] == '.') {
        if (need_digit(p, ++i) < 0) return -1;
        i = skip_digits(p, i);
    }
    if (i < p->len && (p->text[i] == 'e' || p->text[i] == 'E')) {
        if (++i < p->len && (p->text[i] == '+' || p->text[i] == '-')) i++;
        if (need_digit(p, i) < 0) return -1;
        size_t digits = i;
        while (digits < p->len && p->text[digits] == '0')
            digits++;
        i = skip_digits(p, i);
        if (i - digits > EXPONENT_DIGITS_MAX)
            return fail(p, digits, "number exponent out of range");
    }
    v->str = p->text + p->at;
    v->len = (uint32_t)(i - p->at);
    decimal_of(v->str, v->len, &d);
    v->num = decimal_double(&d);
    if (decimal_integral(&d)) v->flags |= JSON_INTEGRAL;
    p->at = i;
    return 0;
}

static int parse_literal(struct parser *p, struct json_value *v)
{
    static const char *const names[] = {"null", "false", "true"};
    static const uint8_t types[] = {JSON_NULL, JSON_FALSE, JSON_TRUE};
    char c = p->text[p->at];
    int k = c == 'n' ? 0 : c == 'f' ? 1 : 2;

    for (const char *s = names[k]; *s; s++, p->at++) {
        if (p->at >= p->len) return fail_end(p);
        if (p->text[p->at] != *s) return fail(p, p->at, "invalid literal");
    }
    v->type = types[k];
    return 0;
}

static int scalar(struct parser *p)
{
    char c = p->text[p->at];
    struct json_value *v;

    if (c == '"') return (v = new_value(p, JSON_STRING)) ? parse_string(p, v) : -1;
    if (c == '-' || is_digit(c)) return (v = new_value(p, JSON_NUMBER)) ? parse_number(p, v) : -1;
    if (c == 't' || c == 'f' || c == 'n')
        return (v = new_value(p, JSON_NULL)) ? parse_literal(p, v) : -1;
    if (c == ']' || c == '}' || c == ',') return fail(p, p->at, "expected a value");
    return fail(p, p->at, "unexpected character");
}

static int key_cmp(uint32_t a, uint32_t b, const void *ctx)
{
    const struct json_value *obj = ctx, *ka = obj + a, *kb = obj + b;

    return bytes_cmp(ka->str, ka->len, kb->str, kb->len);
}

/* Index the members of a finished object by key; reject duplicate keys. */
static int index_members(struct parser *p, struct json_value *obj)
{
    uint32_t *keys = p->keys + p->nkeys;
    const struct json_value *k = json_first(obj);

    for (uint32_t i = 0; i < obj->len; i++, k = json_next(k + 1))
        keys[i] = (uint32_t)(k - obj);
    heap_sort(keys, obj->len, key_cmp, obj);
    for (uint32_t i = 1; i < obj->len; i++) {
        if (key_cmp(keys[i - 1], keys[i], obj) == 0) {
            uint32_t a = obj[keys[i - 1]].pos, b = obj[keys[i]].pos;
            return fail(p, a > b ? a : b, "duplicate object key");
        }
    }
    obj->members = keys;
    p->nkeys += obj->len;
    return 0;
}

static int close_container(struct parser *p, uint32_t index)
{
    struct json_value *v = &p->vals[index];

    v->size = p->nvals - index;
    return v->type == JSON_OBJECT ? index_members(p, v) : 0;
}

static int expect_key(struct parser *p, struct json_value *obj)
{
    skip_space(p);
    if (p->at >= p->len) return fail_end(p);
    if (p->text[p->at] != '"')
        return fail(p, p->at, p->text[p->at] == '}' ? "trailing comma" : "expected a string key");
    struct json_value *key = new_value(p, JSON_STRING);
    if (!key || parse_string(p, key) < 0) return -1;
    obj->len++;
    skip_space(p);
    if (p->at >= p->len) return fail_end(p);
    if (p->text[p->at] != ':') return fail(p, p->at, "expected ':'");
    p->at++;
    return 0;
}

/* Values a text of len bytes can make before it is accepted or refused.
 * Each value owns its first byte, and each but the root follows a byte of
 * its own: ',' or ':', or the bracket of its parent when it is the first
 * child. That bracket is counted twice, which a closing bracket makes up
 * for, except in containers still open: at most max_depth of them. */
static size_t values_cap(size_t len, unsigned max_depth)
{
    return (len + 1 + max_depth) / 2 + 1;
}

size_t json_arena_size(size_t len, unsigned max_depth)
{
    if (len > JSON_TEXT_LIMIT || max_depth == 0 || max_depth > JSON_DEPTH_LIMIT)
        return 0; /* json_parse refuses them before using the arena */
    /* Members of closed objects own 4 bytes or more ("":0): len / 4 keys. */
    return values_cap(len, max_depth) * sizeof(struct json_value) +
           (len / 4 + 1) * sizeof(uint32_t) + len;
}

static void layout(struct parser *p, void *arena, unsigned max_depth)
{
    p->vals = arena;
    p->cap = (uint32_t)values_cap(p->len, max_depth);
    p->keys = (uint32_t *)(p->vals + p->cap);
    p->chars = (char *)(p->keys + p->len / 4 + 1);
}

static int check_limits(struct parser *p, unsigned max_depth, size_t arena_size)
{
    if (p->len > JSON_TEXT_LIMIT) return fail(p, 0, "document too large");
    if (max_depth == 0 || max_depth > JSON_DEPTH_LIMIT) return fail(p, 0, "invalid depth limit");
    if (arena_size < json_arena_size(p->len, max_depth)) return fail(p, 0, "arena too small");
    if (p->len >= 3 && memcmp(p->text, "\xEF\xBB\xBF", 3) == 0)
        return fail(p, 0, "byte order mark not allowed");
    return 0;
}

/* Iterative so that depth costs a word of stack, not a C frame. */
static int parse_document(struct parser *p, unsigned max_depth)
{
    uint32_t stack[JSON_DEPTH_LIMIT];
    unsigned depth = 0;

value:
    skip_space(p);
    if (p->at >= p->len) return fail_end(p);
    if (p->text[p->at] == '[' || p->text[p->at] == '{') {
        bool object = p->text[p->at] == '{';
        if (depth == max_depth) return fail(p, p->at, "nesting too deep");
        stack[depth++] = p->nvals;
        if (!new_value(p, object ? JSON_OBJECT : JSON_ARRAY)) return -1;
        p->at++;
        skip_space(p);
        if (p->at < p->len && p->text[p->at] == (object ? '}' : ']')) {
            p->at++;
            if (close_container(p, stack[--depth]) < 0) return -1;
            goto after;
        }
        if (object && expect_key(p, &p->vals[stack[depth - 1]]) < 0) return -1;
        goto value;
    }
    if (scalar(p) < 0) return -1;
after:
    if (depth == 0) {
        skip_space(p);
        return p->at == p->len ? 0 : fail(p, p->at, "unexpected data after the document");
    }
    struct json_value *top = &p->vals[stack[depth - 1]];
    bool object = top->type == JSON_OBJECT;
    if (!object) top->len++;
    skip_space(p);
    if (p->at >= p->len) return fail_end(p);
    if (p->text[p->at] == ',') {
        p->at++;
        if (object && expect_key(p, top) < 0) return -1;
        goto value;
    }
    if (p->text[p->at] != (object ? '}' : ']'))
        return fail(p, p->at, object ? "expected ',' or '}'" : "expected ',' or ']'");
    p->at++;
    if (close_container(p, stack[--depth]) < 0) return -1;
    goto after;
}

int json_parse(const char *text, size_t len, unsigned max_depth, void *arena, size_t arena_size,
               struct json_doc *doc, struct json_error *err)
{
    struct parser p = {.text = text, .len = len, .err = err};

    if (check_limits(&p, max_depth, arena_size) < 0) return -1;
    layout(&p, arena, max_depth);
    if (parse_document(&p, max_depth) < 0) return -1;
    doc->text = text;
    doc->len = len;
    doc->root = p.vals;
    doc->count = p.nvals;
    return 0;
}
