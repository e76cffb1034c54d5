/* Router: host (exact, case-insensitive, *.suffix), prefix, methods, order. */
#include <string.h>

#include "config.h"
#include "router.h"
#include "test.h"

static const char *yaml =
    "listeners: [{name: l, listen: \"127.0.0.1:1\"}]\n"
    "upstreams: [{name: u, endpoints: [\"127.0.0.1:2\"]}]\n"
    "routes:\n"
    "  - {name: exact, match: {host: api.example.com, prefix: /v1/}, upstream: u}\n"
    "  - {name: wild, match: {host: \"*.example.org\"}, upstream: u}\n"
    "  - {name: posts, match: {prefix: /submit, methods: [POST, PUT]}, upstream: u}\n"
    "  - {name: fallback, match: {prefix: /}, upstream: u}\n";

static struct http_str str(const char *s)
{
    return (struct http_str){s, strlen(s)};
}

static const char *route(const struct config *cfg, const char *host, const char *path,
                         enum http_method m)
{
    const struct route_conf *r = router_match(cfg, str(host), str(path), m);

    return r ? r->name : "(none)";
}

static void test_matching(void)
{
    struct config_errors errors;
    struct config *cfg;

    memset(&errors, 0, sizeof(errors));
    cfg = config_load_string("router.yaml", yaml, strlen(yaml), &errors);
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "%s\n", errors.lines[0]);
        return;
    }
    CHECK_STR(route(cfg, "api.example.com", "/v1/users", HTTP_GET), "exact");
    CHECK_STR(route(cfg, "API.Example.COM", "/v1/", HTTP_GET), "exact");
    CHECK_STR(route(cfg, "api.example.com", "/v2/users", HTTP_GET), "fallback");
    CHECK_STR(route(cfg, "api.example.com", "/v1", HTTP_GET), "fallback");
    CHECK_STR(route(cfg, "xapi.example.com", "/v1/", HTTP_GET), "fallback");
    CHECK_STR(route(cfg, "a.example.org", "/anything", HTTP_GET), "wild");
    CHECK_STR(route(cfg, "a.b.example.org", "/", HTTP_DELETE), "wild");
    CHECK_STR(route(cfg, "example.org", "/", HTTP_GET), "fallback");
    CHECK_STR(route(cfg, "badexample.org", "/", HTTP_GET), "fallback");
    CHECK_STR(route(cfg, "", "/submit", HTTP_POST), "posts");
    CHECK_STR(route(cfg, "", "/submit/x", HTTP_PUT), "posts");
    CHECK_STR(route(cfg, "", "/submit", HTTP_GET), "fallback");
    CHECK_STR(route(cfg, "", "/submit", HTTP_OTHER), "fallback");
    config_free(cfg);
}

static void test_no_match(void)
{
    static const char *only =
        "listeners: [{name: l, listen: \"127.0.0.1:1\"}]\n"
        "upstreams: [{name: u, endpoints: [\"127.0.0.1:2\"]}]\n"
        "routes: [{match: {host: a.test, prefix: /x/}, upstream: u}]\n";
    struct config_errors errors;
    struct config *cfg;

    memset(&errors, 0, sizeof(errors));
    cfg = config_load_string("router.yaml", only, strlen(only), &errors);
    CHECK(cfg != NULL);
    if (!cfg)
        return;
    CHECK_STR(route(cfg, "a.test", "/y/", HTTP_GET), "(none)");
    CHECK_STR(route(cfg, "b.test", "/x/", HTTP_GET), "(none)");
    CHECK_STR(route(cfg, "a.test", "/x/", HTTP_GET), "route0");
    config_free(cfg);
}

int main(void)
{
    RUN(test_matching);
    RUN(test_no_match);
    return TEST_REPORT();
}
