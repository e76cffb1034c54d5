"""Serving files from `static.root`: Content-Type, Last-Modified and
If-Modified-Since, Range, directories, and traversal attempts that must
never leave the root."""

import os
from email.utils import formatdate

import pytest

from conftest import assert_json_error, pattern_bytes, request_bytes, sha256

STATIC_CONFIG = """\
workers: 1
shutdown_timeout: 2s
access_log: "off"
listeners:
  - name: files
    listen: "127.0.0.1:{port}"
routes:
  - match: {{prefix: /}}
    static: {{root: "{root}"}}
"""

MTIME = 1623758400  # Tue, 15 Jun 2021 12:00:00 GMT
MTIME_HTTP = formatdate(MTIME, usegmt=True)
BIG_SIZE = 1 << 20
SECRET = b"TOPSECRET-outside-the-root"

FILES = {
    "index.html": b"<!doctype html><h1>home</h1>\n",
    "style.css": b"body { color: red }\n",
    "app.js": b"console.log('hi');\n",
    "app.mjs": b"export const x = 1;\n",
    "data.json": b'{"a": 1}\n',
    "notes.txt": b"plain text\n",
    "logo.png": b"\x89PNG\r\n\x1a\nfake",
    "photo.JPEG": b"\xff\xd8\xff\xe0fake",
    "icon.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    "font.woff2": b"wOF2fake",
    "mod.wasm": b"\x00asm\x01\x00\x00\x00",
    "doc.pdf": b"%PDF-1.4 fake",
    "archive.tar.gz": b"\x1f\x8bfake",
    "blob.bin": b"\x00\x01\x02unknown",
    "README": b"no extension\n",
    "UPPER.HTML": b"<p>upper</p>",
    "hello world.txt": b"spaces in the name\n",
    "big.bin": pattern_bytes(BIG_SIZE),
    "empty.txt": b"",
    "sub/index.html": b"<h1>sub index</h1>\n",
    "sub/page.txt": b"sub page\n",
    "sub/deeper/leaf.txt": b"leaf\n",
}

TYPES = [
    ("index.html", "text/html"),
    ("style.css", "text/css"),
    ("app.js", ("text/javascript", "application/javascript")),
    ("app.mjs", ("text/javascript", "application/javascript")),
    ("data.json", "application/json"),
    ("notes.txt", "text/plain"),
    ("logo.png", "image/png"),
    ("photo.JPEG", "image/jpeg"),
    ("icon.svg", "image/svg+xml"),
    ("font.woff2", "font/woff2"),
    ("mod.wasm", "application/wasm"),
    ("doc.pdf", "application/pdf"),
    ("archive.tar.gz", "application/gzip"),
    ("blob.bin", "application/octet-stream"),
    ("README", "application/octet-stream"),
    ("UPPER.HTML", "text/html"),
]


@pytest.fixture(scope="module")
def site(work_dir):
    base = os.path.join(work_dir, "static_site")
    root = os.path.join(base, "www")
    for rel, data in FILES.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (MTIME, MTIME))
    os.makedirs(os.path.join(root, "noindex"), exist_ok=True)
    # Secrets next to the root, including a sibling whose name starts with
    # the root's name (catches a string-prefix containment check).
    with open(os.path.join(base, "secret.txt"), "wb") as f:
        f.write(SECRET)
    os.makedirs(os.path.join(base, "www-evil"), exist_ok=True)
    with open(os.path.join(base, "www-evil", "secret.txt"), "wb") as f:
        f.write(SECRET)
    return root


@pytest.fixture(scope="module")
def files_gw(gateway_factory, site):
    return gateway_factory("static", STATIC_CONFIG, root=site)


@pytest.fixture
def fs(files_gw):
    return files_gw.ensure_running()


def media_type(resp):
    return (resp.header("Content-Type") or "").split(";")[0].strip().lower()


# ---------------------------------------------------------------------------
# Plain files


@pytest.mark.parametrize("name,want", TYPES)
def test_content_type(fs, name, want):
    path = "/" + name.replace(" ", "%20")
    r = fs.request("GET", path)
    assert r.status == 200, r
    wants = want if isinstance(want, tuple) else (want,)
    assert media_type(r) in wants, r.header("Content-Type")
    assert r.body == FILES[name]
    assert r.header("Content-Length") == str(len(FILES[name]))


def test_text_types_say_utf8(fs):
    r = fs.request("GET", "/notes.txt")
    assert "charset=utf-8" in r.header("Content-Type", "").lower().replace(" ", "")


def test_big_file_whole(fs):
    with fs.conn(timeout=20) as c:
        c.send(request_bytes("GET", "/big.bin"))
        r = c.read_response()
    assert r.status == 200, r
    assert len(r.body) == BIG_SIZE
    assert sha256(r.body) == sha256(FILES["big.bin"])


def test_empty_file(fs):
    r = fs.request("GET", "/empty.txt")
    assert r.status == 200, r
    assert r.body == b""
    assert r.header("Content-Length") == "0"


def test_percent_encoded_name(fs):
    r = fs.request("GET", "/hello%20world.txt")
    assert r.status == 200, r
    assert r.body == FILES["hello world.txt"]


def test_query_string_ignored(fs):
    r = fs.request("GET", "/notes.txt?v=123&x=../../secret.txt")
    assert r.status == 200, r
    assert r.body == FILES["notes.txt"]


def test_head_static(fs):
    with fs.conn() as c:
        c.send(request_bytes("HEAD", "/big.bin"))
        r = c.read_response(method="HEAD")
        assert r.status == 200, r
        assert r.header("Content-Length") == str(BIG_SIZE)
        assert r.body == b""
        c.send(request_bytes("GET", "/notes.txt"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == FILES["notes.txt"], r2
        assert c.buf == b""


def test_keepalive_across_static_requests(fs):
    with fs.conn(timeout=20) as c:
        for name in ("index.html", "big.bin", "style.css", "sub/page.txt"):
            c.send(request_bytes("GET", "/" + name))
            r = c.read_response()
            assert r.status == 200, r
            assert r.body == FILES[name]


def test_pipelined_static_requests(fs):
    names = ["notes.txt", "data.json", "sub/page.txt"]
    with fs.conn() as c:
        c.send(b"".join(request_bytes("GET", "/" + n) for n in names))
        for n in names:
            r = c.read_response()
            assert r.status == 200 and r.body == FILES[n], r


# ---------------------------------------------------------------------------
# Directories and missing files


@pytest.mark.parametrize("path,name", [
    ("/", "index.html"),
    ("/sub/", "sub/index.html"),
    ("//sub//", "sub/index.html"),
    ("/?x=1", "index.html"),
])
def test_directory_serves_index_html(fs, path, name):
    r = fs.request("GET", path)
    assert r.status == 200, r
    assert r.body == FILES[name]
    assert media_type(r) == "text/html"


def test_directory_without_index(fs):
    r = fs.request("GET", "/noindex/")
    assert r.status in (403, 404), r
    assert_json_error(r, r.status)


@pytest.mark.parametrize("path", ["/missing.txt", "/sub/missing.html", "/nodir/x",
                                  "/index.html/extra"])
def test_missing_is_404_json(fs, path):
    assert_json_error(fs.request("GET", path), 404)


# ---------------------------------------------------------------------------
# Last-Modified / If-Modified-Since


def test_last_modified(fs):
    r = fs.request("GET", "/notes.txt")
    assert r.status == 200, r
    assert r.header("Last-Modified") == MTIME_HTTP


@pytest.mark.parametrize("ims", [MTIME_HTTP, formatdate(MTIME + 3600, usegmt=True)])
def test_if_modified_since_not_modified(fs, ims):
    with fs.conn() as c:
        c.send(request_bytes("GET", "/notes.txt", headers=[("If-Modified-Since", ims)]))
        r = c.read_response()
        assert r.status == 304, r
        assert r.body == b""
        # The 304 carried no body: the connection goes on cleanly.
        c.send(request_bytes("GET", "/style.css"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == FILES["style.css"], r2


@pytest.mark.parametrize("ims", [formatdate(MTIME - 3600, usegmt=True), "not a date",
                                 "Thu, 01 Jan 1970 00:00:00 GMT"])
def test_if_modified_since_modified_or_invalid(fs, ims):
    r = fs.request("GET", "/notes.txt", headers=[("If-Modified-Since", ims)])
    assert r.status == 200, r
    assert r.body == FILES["notes.txt"]


# ---------------------------------------------------------------------------
# Range

BIG = FILES["big.bin"]


@pytest.mark.parametrize("spec,first,last", [
    ("bytes=0-99", 0, 99),
    ("bytes=1000-", 1000, BIG_SIZE - 1),
    ("bytes=-500", BIG_SIZE - 500, BIG_SIZE - 1),
    ("bytes=1048000-99999999", 1048000, BIG_SIZE - 1),
    ("bytes=-99999999", 0, BIG_SIZE - 1),
    ("bytes=5-5", 5, 5),
])
def test_range_206(fs, spec, first, last):
    with fs.conn() as c:
        c.send(request_bytes("GET", "/big.bin", headers=[("Range", spec)]))
        r = c.read_response()
        assert r.status == 206, r
        assert r.header("Content-Range") == "bytes %d-%d/%d" % (first, last, BIG_SIZE)
        assert r.header("Content-Length") == str(last - first + 1)
        assert r.body == BIG[first:last + 1]
        c.send(request_bytes("GET", "/notes.txt"))
        assert c.read_response().body == FILES["notes.txt"]


@pytest.mark.parametrize("spec", ["bytes=%d-" % BIG_SIZE, "bytes=%d-%d" % (BIG_SIZE, BIG_SIZE + 9),
                                  "bytes=99999999-"])
def test_range_416(fs, spec):
    with fs.conn() as c:
        c.send(request_bytes("GET", "/big.bin", headers=[("Range", spec)]))
        r = c.read_response()
        assert r.status == 416, r
        assert r.header("Content-Range") == "bytes */%d" % BIG_SIZE
        # The connection goes on after a 416.
        c.send(request_bytes("GET", "/notes.txt"))
        assert c.read_response().body == FILES["notes.txt"]


@pytest.mark.parametrize("spec", ["bytes=0-1,5-6", "bytes=abc", "bytes=9-5", "lines=1-2",
                                  "bytes="])
def test_range_ignored_gives_whole_file(fs, spec):
    r = fs.request("GET", "/big.bin", headers=[("Range", spec)], timeout=20)
    assert r.status == 200, r
    assert len(r.body) == BIG_SIZE and sha256(r.body) == sha256(BIG)


def test_range_on_small_text_file(fs):
    r = fs.request("GET", "/notes.txt", headers=[("Range", "bytes=6-")])
    assert r.status == 206, r
    assert r.body == FILES["notes.txt"][6:]
    assert media_type(r) == "text/plain"


# ---------------------------------------------------------------------------
# Traversal: never outside the root

TRAVERSALS = [
    "/../secret.txt",
    "/../../../../../../etc/passwd",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub/..%2f..%2fsecret.txt",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/../www-evil/secret.txt",
    "/%2e%2e/www-evil/secret.txt",
    "/./../secret.txt",
    "/secret.txt%00.html",
    "/%00",
    "/%c0%ae%c0%ae/secret.txt",
    "/%252e%252e/secret.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_never_escapes(fs, path):
    with fs.conn() as c:
        c.send(request_bytes("GET", path))
        r = c.read_response()
    assert r.status in (400, 404), r
    assert SECRET not in r.body
    assert b"root:" not in r.body
    assert_json_error(r, r.status)


@pytest.mark.parametrize("path", ["/%zz", "/a%2", "/a%00b", "/sub/%2F/page.txt"])
def test_bad_paths_are_400(fs, path):
    assert_json_error(fs.request("GET", path), 400)


def test_path_too_long_is_414(fs):
    path = "/" + "abcdefghi/" * 1600 + "x.txt"
    r = fs.request("GET", path)
    assert_json_error(r, 414)


def test_dot_segments_inside_root_do_not_serve_other_files(fs):
    # "/sub/../notes.txt" stays inside the root; whether it is refused (400)
    # or normalised (notes.txt) both are acceptable, but never anything else.
    r = fs.request("GET", "/sub/../notes.txt")
    assert r.status in (200, 400, 404), r
    if r.status == 200:
        assert r.body == FILES["notes.txt"]
