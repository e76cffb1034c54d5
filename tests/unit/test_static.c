/* Unit tests for gateway/static.c: path mapping, Content-Type, Range. */
#include "static.h"

#include <stdint.h>
#include <string.h>

#include "test.h"

#define ROOT "/srv/www"

static char out[512];

static int map(const char *path)
{
    memset(out, 'X', sizeof out);
    return static_map_path(ROOT, path, strlen(path), out, sizeof out);
}

static void check_maps(const char *path, const char *want)
{
    int n = map(path);

    CHECK_INT(n, (long long)strlen(want));
    CHECK_STR(out, want);
}

static void test_map_plain(void)
{
    check_maps("/", ROOT "/index.html");
    check_maps("/a.txt", ROOT "/a.txt");
    check_maps("/a/b/c.css", ROOT "/a/b/c.css");
    check_maps("/dir/", ROOT "/dir/index.html");
    check_maps("/dir/sub/", ROOT "/dir/sub/index.html");
    check_maps("/dir", ROOT "/dir");
    check_maps("/...", ROOT "/...");
    check_maps("/a..b/.c", ROOT "/a..b/.c");
    check_maps("/a.txt?x=1&y=/../..", ROOT "/a.txt");
    check_maps("/?q", ROOT "/index.html");
}

static void test_map_collapses_slashes(void)
{
    check_maps("//x", ROOT "/x");
    check_maps("///a//b///c", ROOT "/a/b/c");
    check_maps("/a//", ROOT "/a/index.html");
    check_maps("//", ROOT "/index.html");
}

static void test_map_decodes(void)
{
    check_maps("/hello%20world.txt", ROOT "/hello world.txt");
    check_maps("/%41%62c", ROOT "/Abc");
    check_maps("/caf%C3%A9", ROOT "/caf\xC3\xA9");
    check_maps("/100%25", ROOT "/100%");
}

static void test_map_traversal(void)
{
    CHECK_INT(map("/../etc/passwd"), STATIC_BAD_PATH);
    CHECK_INT(map("/a/../../etc/passwd"), STATIC_BAD_PATH);
    CHECK_INT(map("/a/.."), STATIC_BAD_PATH);
    CHECK_INT(map("/a/../"), STATIC_BAD_PATH);
    CHECK_INT(map("/./a"), STATIC_BAD_PATH);
    CHECK_INT(map("/a/."), STATIC_BAD_PATH);
    CHECK_INT(map("/%2e%2e/x"), STATIC_BAD_PATH);
    CHECK_INT(map("/%2E%2E/x"), STATIC_BAD_PATH);
    CHECK_INT(map("/.%2e/x"), STATIC_BAD_PATH);
    CHECK_INT(map("/%2e./x"), STATIC_BAD_PATH);
    CHECK_INT(map("/%2e/x"), STATIC_BAD_PATH);
    CHECK_INT(map("/a/%2F/b"), STATIC_BAD_PATH);
    CHECK_INT(map("/a/%2f/b"), STATIC_BAD_PATH);
    CHECK_INT(map("/..%2Fetc%2Fpasswd"), STATIC_BAD_PATH);
    CHECK_INT(map("/a\\b"), STATIC_BAD_PATH);
    CHECK_INT(map("/..\\..\\etc"), STATIC_BAD_PATH);
    CHECK_INT(map("/a%5Cb"), STATIC_BAD_PATH);
    CHECK_INT(map("/a%5c..%5c..%5cetc"), STATIC_BAD_PATH);
}

static void test_map_bad_bytes(void)
{
    static const char nul_raw[] = "/a\0b";

    CHECK_INT(map("/a%00b"), STATIC_BAD_PATH);
    CHECK_INT(map("%00"), STATIC_BAD_PATH);
    CHECK_INT(map("/%00"), STATIC_BAD_PATH);
    CHECK_INT(static_map_path(ROOT, nul_raw, sizeof nul_raw - 1, out, sizeof out), STATIC_BAD_PATH);
    CHECK_INT(map("/a%0Ab"), STATIC_BAD_PATH);
    CHECK_INT(map("/a%7Fb"), STATIC_BAD_PATH);
    CHECK_INT(map("/%zz"), STATIC_BAD_PATH);
    CHECK_INT(map("/%g0"), STATIC_BAD_PATH);
    CHECK_INT(map("/%"), STATIC_BAD_PATH);
    CHECK_INT(map("/%4"), STATIC_BAD_PATH);
    CHECK_INT(map("/a%"), STATIC_BAD_PATH);
    CHECK_INT(map(""), STATIC_BAD_PATH);
    CHECK_INT(map("a/b"), STATIC_BAD_PATH);
    CHECK_INT(map("*"), STATIC_BAD_PATH);
}

static void test_map_too_long(void)
{
    char path[2048];
    char small[16];

    path[0] = '/';
    memset(path + 1, 'a', sizeof path - 2);
    path[sizeof path - 1] = '\0';
    CHECK_INT(map(path), STATIC_TOO_LONG);

    /* A bad byte anywhere still makes it a 400, whatever the length. */
    memcpy(path + 1500, "/../", 4);
    CHECK_INT(map(path), STATIC_BAD_PATH);
    memcpy(path + 1500, "aaaa", 4);
    memcpy(path + 1800, "%zz", 3);
    CHECK_INT(map(path), STATIC_BAD_PATH);

    /* Exactly at the edge: "/r" + "/abcdefghijkl" is 15 bytes + NUL. */
    CHECK_INT(static_map_path("/r", "/abcdefghijkl", 13, small, sizeof small), 15);
    CHECK_STR(small, "/r/abcdefghijkl");
    CHECK_INT(static_map_path("/r", "/abcdefghijklm", 14, small, sizeof small), STATIC_TOO_LONG);
    CHECK_INT(static_map_path("/r", "//abcdefghijkl//", 16, small, sizeof small), STATIC_TOO_LONG);
    CHECK_INT(static_map_path("/r", "//abcdefghijkl", 14, small, sizeof small), 15);
    /* index.html must fit as well. */
    CHECK_INT(static_map_path("/r", "/abc/", 5, small, sizeof small), STATIC_TOO_LONG);
    CHECK_INT(static_map_path("/r", "/ab/", 4, small, sizeof small), STATIC_TOO_LONG);
    CHECK_INT(static_map_path("/r", "/a/", 3, small, sizeof small), 15);
    CHECK_STR(small, "/r/a/index.html");
    /* The root alone too long. */
    CHECK_INT(static_map_path("/a/very/long/root/dir", "/x", 2, small, sizeof small),
              STATIC_TOO_LONG);
    CHECK_INT(static_map_path(ROOT, "/x", 2, small, 0), STATIC_TOO_LONG);
}

static void test_map_root_forms(void)
{
    char buf[64];

    CHECK_INT(static_map_path("/srv/", "/a", 2, buf, sizeof buf), 6);
    CHECK_STR(buf, "/srv/a");
    CHECK_INT(static_map_path("/", "/a", 2, buf, sizeof buf), 2);
    CHECK_STR(buf, "/a");
    CHECK_INT(static_map_path("/", "/", 1, buf, sizeof buf), 11);
    CHECK_STR(buf, "/index.html");
    /* path_len is honoured: bytes after it are not looked at. */
    CHECK_INT(static_map_path("/srv", "/ab/../x", 3, buf, sizeof buf), 7);
    CHECK_STR(buf, "/srv/ab");
}

static void test_content_type(void)
{
    CHECK_STR(static_content_type("/r/index.html"), "text/html; charset=utf-8");
    CHECK_STR(static_content_type("/r/a.HTM"), "text/html; charset=utf-8");
    CHECK_STR(static_content_type("/r/s.css"), "text/css; charset=utf-8");
    CHECK_STR(static_content_type("/r/app.js"), "text/javascript; charset=utf-8");
    CHECK_STR(static_content_type("/r/app.mjs"), "text/javascript; charset=utf-8");
    CHECK_STR(static_content_type("/r/d.json"), "application/json");
    CHECK_STR(static_content_type("/r/a.txt"), "text/plain; charset=utf-8");
    CHECK_STR(static_content_type("/r/a.xml"), "application/xml");
    CHECK_STR(static_content_type("/r/a.svg"), "image/svg+xml");
    CHECK_STR(static_content_type("/r/a.png"), "image/png");
    CHECK_STR(static_content_type("/r/a.jpg"), "image/jpeg");
    CHECK_STR(static_content_type("/r/a.JPEG"), "image/jpeg");
    CHECK_STR(static_content_type("/r/a.gif"), "image/gif");
    CHECK_STR(static_content_type("/r/a.webp"), "image/webp");
    CHECK_STR(static_content_type("/r/favicon.ico"), "image/x-icon");
    CHECK_STR(static_content_type("/r/f.woff"), "font/woff");
    CHECK_STR(static_content_type("/r/f.woff2"), "font/woff2");
    CHECK_STR(static_content_type("/r/f.ttf"), "font/ttf");
    CHECK_STR(static_content_type("/r/m.wasm"), "application/wasm");
    CHECK_STR(static_content_type("/r/d.pdf"), "application/pdf");
    CHECK_STR(static_content_type("/r/v.mp4"), "video/mp4");
    CHECK_STR(static_content_type("/r/v.webm"), "video/webm");
    CHECK_STR(static_content_type("/r/s.mp3"), "audio/mpeg");
    CHECK_STR(static_content_type("/r/app.js.map"), "application/json");
    CHECK_STR(static_content_type("/r/t.csv"), "text/csv; charset=utf-8");
    CHECK_STR(static_content_type("/r/a.zip"), "application/zip");
    CHECK_STR(static_content_type("/r/a.tar.gz"), "application/gzip");
}

static void test_content_type_unknown(void)
{
    CHECK_STR(static_content_type("/r/a.exe"), "application/octet-stream");
    CHECK_STR(static_content_type("/r/README"), "application/octet-stream");
    CHECK_STR(static_content_type("/r/trailing."), "application/octet-stream");
    CHECK_STR(static_content_type("/r/.html"), "application/octet-stream");
    CHECK_STR(static_content_type("/r.html/file"), "application/octet-stream");
    CHECK_STR(static_content_type("/r/a.htmlx"), "application/octet-stream");
    CHECK_STR(static_content_type("/r/a.ht"), "application/octet-stream");
    CHECK_STR(static_content_type(""), "application/octet-stream");
    CHECK_STR(static_content_type("plain.txt"), "text/plain; charset=utf-8");
}

static enum range_result range(const char *v, uint64_t size, uint64_t *first, uint64_t *last)
{
    return static_parse_range(v, strlen(v), size, first, last);
}

static void check_range(const char *v, uint64_t size, uint64_t want_first, uint64_t want_last)
{
    uint64_t first = 12345, last = 12345;

    CHECK_INT(range(v, size, &first, &last), RANGE_OK);
    CHECK_INT(first, want_first);
    CHECK_INT(last, want_last);
}

static void test_range_ok(void)
{
    check_range("bytes=0-99", 1000, 0, 99);
    check_range("bytes=0-0", 1000, 0, 0);
    check_range("bytes=999-999", 1000, 999, 999);
    check_range("bytes=100-", 1000, 100, 999);
    check_range("bytes=0-", 1, 0, 0);
    check_range("BYTES=5-9", 1000, 5, 9);
    check_range("  bytes=5-9  ", 1000, 5, 9);
    check_range("bytes= 5-9 ", 1000, 5, 9);
    check_range("bytes=5-9,", 1000, 5, 9);
    check_range("bytes=, 5-9", 1000, 5, 9);
}

static void test_range_suffix(void)
{
    check_range("bytes=-500", 1000, 500, 999);
    check_range("bytes=-1", 1000, 999, 999);
    check_range("bytes=-1000", 1000, 0, 999);
    check_range("bytes=-5000", 1000, 0, 999);
    check_range("bytes=-99999999999999999999999", 1000, 0, 999);
}

static void test_range_clamped(void)
{
    check_range("bytes=0-5000", 1000, 0, 999);
    check_range("bytes=900-99999999999999999999999", 1000, 900, 999);
    check_range("bytes=0-18446744073709551615", 10, 0, 9);
}

static void test_range_unsatisfiable(void)
{
    uint64_t f, l;

    CHECK_INT(range("bytes=1000-", 1000, &f, &l), RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=1000-2000", 1000, &f, &l), RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=5000-6000", 1000, &f, &l), RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=99999999999999999999999-", 1000, &f, &l), RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=0-0", 0, &f, &l), RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=0-", 0, &f, &l), RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=-0", 1000, &f, &l), RANGE_UNSATISFIABLE);
    CHECK_INT(range("bytes=-10", 0, &f, &l), RANGE_UNSATISFIABLE);
}

static void test_range_none(void)
{
    uint64_t f, l;

    CHECK_INT(range("", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=,", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=-", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=abc", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=5", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=9-5", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=0-99,200-299", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=-5,-3", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("items=0-9", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes =0-9", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=0 - 9", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=+1-9", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=1-9x", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=0x10-20", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=--5", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=1--5", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(range("bytes=-5-", 1000, &f, &l), RANGE_NONE);
    CHECK_INT(static_parse_range(NULL, 0, 1000, &f, &l), RANGE_NONE);
    /* len is honoured: "bytes=0-9" cut to "bytes=0-" is an open range. */
    CHECK_INT(static_parse_range("bytes=0-9", 8, 1000, &f, &l), RANGE_OK);
    CHECK_INT(l, 999);
    /* Malformed wins over unsatisfiable. */
    CHECK_INT(range("bytes=5000-10", 1000, &f, &l), RANGE_NONE);
}

int main(void)
{
    RUN(test_map_plain);
    RUN(test_map_collapses_slashes);
    RUN(test_map_decodes);
    RUN(test_map_traversal);
    RUN(test_map_bad_bytes);
    RUN(test_map_too_long);
    RUN(test_map_root_forms);
    RUN(test_content_type);
    RUN(test_content_type_unknown);
    RUN(test_range_ok);
    RUN(test_range_suffix);
    RUN(test_range_clamped);
    RUN(test_range_unsatisfiable);
    RUN(test_range_none);
    return TEST_REPORT();
}
