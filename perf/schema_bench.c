/* Validation throughput of ringgate's JSON Schema validator beside jansson's
 * parser, on the same bodies in the same process (perf/schema_bench.sh
 * builds and runs it, with python3-jsonschema alongside).
 *
 *   schema_bench [-t MIN_SECONDS] [-r REPEATS] [-w] LABEL SCHEMA_FILE BODY_FILE ...
 *
 * For every (label, schema, body) triple, each way below runs for at least
 * MIN_SECONDS (0.5) of this thread's CPU time (-w: wall-clock time), the
 * ways taking turns, REPEATS (3) rounds; the best run of each is kept:
 *   rg_validate_in  schema_validate_in() with one arena reused across calls:
 *                   the gateway's hot path
 *   rg_validate     schema_validate(): the same with a malloc/free per call
 *   rg_parse        schema_validate_in() against the schema `true`: the JSON
 *                   reader alone (it still parses the whole body)
 *   jansson_parse   json_loadb(body, len, 0) + json_decref(): parsing alone
 *
 * Before timing, the body must be valid against the schema, jansson must
 * parse it, and the body with its first "qty" value set to 0 must be invalid
 * (the schema really is enforced deep in the document).
 *
 * Prints "RESULT\tlabel\tbytes\tmetric\tMB/s" lines (MB = 10^6 bytes) and
 * "#" comment lines. ringgate's JSON reader and jansson both name things
 * json_*: only schema.h is included here, never filters/json.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "schema.h"

struct bench {
    const char *label;
    char *body;
    size_t len;
    struct schema *schema;
    struct schema *trivial; /* `true` */
    void *arena;            /* schema_arena_size(schema, len) bytes */
    size_t arena_size;
    void *trivial_arena;
    size_t trivial_arena_size;
    long sink; /* results are added here, so no call is ever dead */
};

typedef void (*op_fn)(struct bench *b);

static void die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "schema_bench: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(1);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long n;

    if (!f)
        die("%s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        die("%s: cannot size it%s", path, "");
    data = malloc((size_t)n + 1);
    if (!data || fread(data, 1, (size_t)n, f) != (size_t)n)
        die("%s: cannot read it%s", path, "");
    fclose(f);
    data[n] = '\0';
    *len = (size_t)n;
    return data;
}

/* CPU time of this thread: what validation costs, not what the other
 * processes of a shared machine took meanwhile (-w: wall-clock time). */
static clockid_t clock_id = CLOCK_THREAD_CPUTIME_ID;

static double now(void)
{
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void op_validate_in(struct bench *b)
{
    struct schema_result res;
    b->sink += schema_validate_in(b->schema, b->body, b->len, b->arena, b->arena_size, &res);
}

static void op_validate(struct bench *b)
{
    struct schema_result res;
    b->sink += schema_validate(b->schema, b->body, b->len, &res);
}

static void op_parse(struct bench *b)
{
    struct schema_result res;
    b->sink += schema_validate_in(b->trivial, b->body, b->len, b->trivial_arena,
                                  b->trivial_arena_size, &res);
}

static void op_jansson(struct bench *b)
{
    json_error_t err;
    json_t *doc = json_loadb(b->body, b->len, 0, &err);

    b->sink += doc == NULL;
    json_decref(doc);
}

/* Calls per batch: about 5 ms of them, so that reading the clock costs
 * nothing. */
static long calibrate(struct bench *b, op_fn op)
{
    double t0 = now(), per_call;
    long calls = 0, batch;

    op(b); /* warm: caches, page faults of the arena, malloc's free lists */
    do {
        op(b);
        calls++;
    } while (now() - t0 < 0.05);
    per_call = (now() - t0) / (double)calls;
    batch = (long)(0.005 / per_call);
    return batch < 1 ? 1 : batch;
}

/* MB/s of one run of at least min_time seconds. */
static double run(struct bench *b, op_fn op, long batch, double min_time)
{
    double start = now(), elapsed;
    long n = 0;

    do {
        for (long i = 0; i < batch; i++)
            op(b);
        n += batch;
        elapsed = now() - start;
    } while (elapsed < min_time);
    return (double)b->len * (double)n / elapsed / 1e6;
}

static struct schema *compile_file(const char *path)
{
    struct schema_error err;
    size_t len;
    char *text = read_file(path, &len);
    char *copy = strdup(path);
    struct schema *s = schema_compile(text, len, path, dirname(copy), &err);

    if (!s)
        die("%s%s", err.message, "");
    free(copy);
    free(text);
    return s;
}

static void *arena_for(struct schema *s, size_t len, size_t *size)
{
    void *arena;

    *size = schema_arena_size(s, len);
    arena = aligned_alloc(64, (*size + 63) & ~(size_t)63);
    if (!arena)
        die("no memory for an arena%s%s", "", "");
    return arena;
}

/* The body is valid; jansson parses it; with its first "qty" at 0 it is not. */
static void check(struct bench *b, const char *body_path)
{
    struct schema_result res;
    json_error_t jerr;
    json_t *doc;
    char *qty, *bad;
    int rc;

    rc = schema_validate_in(b->schema, b->body, b->len, b->arena, b->arena_size, &res);
    if (rc != SCHEMA_VALID) {
        fprintf(stderr, "schema_bench: %s is not valid (%d): %s at '%s' (%s)\n", body_path, rc,
                res.message, rc == SCHEMA_INVALID ? res.instance_path : "", res.schema_path);
        exit(1);
    }
    doc = json_loadb(b->body, b->len, 0, &jerr);
    if (!doc)
        die("jansson does not parse %s: %s", body_path, jerr.text);
    json_decref(doc);

    qty = strstr(b->body, "\"qty\":");
    if (!qty)
        die("%s has no \"qty\"%s", body_path, "");
    bad = malloc(b->len);
    memcpy(bad, b->body, b->len);
    bad[qty - b->body + 6] = '0';
    rc = schema_validate(b->schema, bad, b->len, &res);
    free(bad);
    if (rc != SCHEMA_INVALID)
        die("%s with \"qty\":0 is not refused%s", body_path, "");
    printf("# %s: %zu bytes, arena %zu bytes; qty=0 refused at %s (%s)\n", b->label, b->len,
           b->arena_size, res.instance_path, res.schema_path);
}

int main(int argc, char **argv)
{
    double min_time = 0.5;
    int repeats = 3, opt;
    static const struct {
        const char *name;
        op_fn fn;
    } ops[] = {
        {"rg_validate_in", op_validate_in},
        {"rg_validate", op_validate},
        {"rg_parse", op_parse},
        {"jansson_parse", op_jansson},
    };
    enum { N_OPS = sizeof(ops) / sizeof(ops[0]) };

    while ((opt = getopt(argc, argv, "t:r:w")) != -1) {
        if (opt == 't')
            min_time = atof(optarg);
        else if (opt == 'r')
            repeats = atoi(optarg);
        else if (opt == 'w')
            clock_id = CLOCK_MONOTONIC;
        else
            return 2;
    }
    if (argc - optind < 3 || (argc - optind) % 3 || min_time <= 0 || repeats < 1) {
        fprintf(stderr, "usage: schema_bench [-t MIN_SECONDS] [-r REPEATS] [-w] "
                        "LABEL SCHEMA_FILE BODY_FILE ...\n");
        return 2;
    }
    printf("# jansson %s; each figure: best of %d runs of >= %.2f s of %s time\n", JANSSON_VERSION,
           repeats, min_time, clock_id == CLOCK_MONOTONIC ? "wall-clock" : "thread CPU");
    fflush(stdout);

    for (int i = optind; i + 2 < argc; i += 3) {
        struct bench b = {.label = argv[i]};
        struct schema_error err;
        long batch[N_OPS];
        double best[N_OPS];

        b.body = read_file(argv[i + 2], &b.len);
        b.schema = compile_file(argv[i + 1]);
        b.trivial = schema_compile("true", 4, "true.json", NULL, &err);
        if (!b.trivial)
            die("%s%s", err.message, "");
        b.arena = arena_for(b.schema, b.len, &b.arena_size);
        b.trivial_arena = arena_for(b.trivial, b.len, &b.trivial_arena_size);
        check(&b, argv[i + 2]);

        /* Rounds over all the ways in turn, so that a change of load on a
         * shared machine hits them alike; the best run of each is kept. */
        for (size_t k = 0; k < N_OPS; k++) {
            batch[k] = calibrate(&b, ops[k].fn);
            best[k] = 0;
        }
        for (int r = 0; r < repeats; r++)
            for (size_t k = 0; k < N_OPS; k++) {
                double mbps = run(&b, ops[k].fn, batch[k], min_time);
                if (mbps > best[k])
                    best[k] = mbps;
            }
        for (size_t k = 0; k < N_OPS; k++)
            printf("RESULT\t%s\t%zu\t%s\t%.3f\n", b.label, b.len, ops[k].name, best[k]);
        fflush(stdout);
        if (b.sink != 0) /* every call succeeded: 0 is SCHEMA_VALID, and jansson never failed */
            die("a timed call failed on %s%s", b.label, "");
        free(b.arena);
        free(b.trivial_arena);
        schema_free(b.trivial);
        schema_free(b.schema);
        free(b.body);
    }
    return 0;
}
