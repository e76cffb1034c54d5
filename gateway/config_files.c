/* The files a configuration names. */
#include "config_files.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config.h"

#define MAX_CONFIG_BYTES (16u << 20)

struct lister {
    yaml_document_t *doc;
    char *base_dir;
    struct config_files *out;
    bool failed; /* out of memory */
};

static yaml_node_t *mapping_value(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);

        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

static size_t items_count(yaml_node_t *seq)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE) return 0;
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

static yaml_node_t *item_at(yaml_document_t *doc, yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(doc, seq->data.sequence.items.start[i]);
}

static bool already_listed(const struct config_files *out, const char *path, enum file_kind kind)
{
    for (size_t i = 0; i < out->count; i++)
        if (out->files[i].kind == kind && strcmp(out->files[i].path, path) == 0) return true;
    return false;
}

/* Adds the file a scalar names, resolved like the loader does. */
static void add_file(struct lister *ls, yaml_node_t *value, enum file_kind kind)
{
    struct named_file *grown;
    const char *text;
    char *path;

    if (!value || value->type != YAML_SCALAR_NODE || ls->failed) return;
    text = (const char *)value->data.scalar.value;
    if (text[0] == '\0') return;
    if (text[0] == '/')
        path = strdup(text);
    else if (asprintf(&path, "%s/%s", ls->base_dir, text) < 0)
        path = NULL;
    if (!path) {
        ls->failed = true;
        return;
    }
    if (already_listed(ls->out, path, kind)) {
        free(path);
        return;
    }
    grown = realloc(ls->out->files, (ls->out->count + 1) * sizeof(*grown));
    if (!grown) {
        free(path);
        ls->failed = true;
        return;
    }
    ls->out->files = grown;
    ls->out->files[ls->out->count++] = (struct named_file){path, kind};
}

static void list_listeners(struct lister *ls, yaml_node_t *root)
{
    yaml_node_t *listeners = mapping_value(ls->doc, root, "listeners");

    for (size_t i = 0; i < items_count(listeners); i++) {
        yaml_node_t *tls = mapping_value(ls->doc, item_at(ls->doc, listeners, i), "tls");
        yaml_node_t *certs = mapping_value(ls->doc, tls, "certificates");

        for (size_t j = 0; j < items_count(certs); j++) {
            yaml_node_t *c = item_at(ls->doc, certs, j);

            add_file(ls, mapping_value(ls->doc, c, "cert"), FILE_CERT);
            add_file(ls, mapping_value(ls->doc, c, "key"), FILE_KEY);
        }
    }
}

static void list_sections(struct lister *ls, yaml_node_t *root)
{
    yaml_node_t *upstreams = mapping_value(ls->doc, root, "upstreams");
    yaml_node_t *providers = mapping_value(ls->doc, root, "jwt_providers");
    yaml_node_t *schemas = mapping_value(ls->doc, root, "schemas");

    for (size_t i = 0; i < items_count(upstreams); i++)
        add_file(ls, mapping_value(ls->doc, item_at(ls->doc, upstreams, i), "ca"), FILE_CA);
    for (size_t i = 0; i < items_count(providers); i++) {
        yaml_node_t *p = item_at(ls->doc, providers, i);

        add_file(ls, mapping_value(ls->doc, p, "jwks_file"), FILE_JWKS);
        if (mapping_value(ls->doc, p, "secret")) ls->out->holds_secret = true;
    }
    for (size_t i = 0; i < items_count(schemas); i++)
        add_file(ls, mapping_value(ls->doc, item_at(ls->doc, schemas, i), "file"), FILE_SCHEMA);
}

int config_files_list_string(const char *config_path, const char *text, size_t len,
                             struct config_files *out)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    struct lister ls = {&doc, config_base_dir(config_path), out, false};
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!ls.base_dir || !yaml_parser_initialize(&parser)) {
        free(ls.base_dir);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (yaml_parser_load(&parser, &doc)) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);

        list_listeners(&ls, root);
        list_sections(&ls, root);
        rc = ls.failed ? -1 : 0;
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    free(ls.base_dir);
    if (rc < 0) config_files_free(out);
    return rc;
}

int config_files_list(const char *config_path, struct config_files *out)
{
    FILE *f = fopen(config_path, "rb");
    char *text = f ? malloc(MAX_CONFIG_BYTES) : NULL;
    size_t len = text ? fread(text, 1, MAX_CONFIG_BYTES, f) : 0;
    int rc = text && !ferror(f) ? config_files_list_string(config_path, text, len, out) : -1;

    if (rc < 0) memset(out, 0, sizeof(*out));
    free(text);
    if (f) fclose(f);
    return rc;
}

void config_files_free(struct config_files *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->files[i].path);
    free(list->files);
    memset(list, 0, sizeof(*list));
}
