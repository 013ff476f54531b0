/*
 * record_int.h - what record.c (the record) and record_flow.c (the
 * flows it carries) share: the JSON helpers of the sealed plain form.
 * Nothing else includes this.
 */
#ifndef CREDD_RECORD_INT_H
#define CREDD_RECORD_INT_H

#include <stdint.h>

#include <jansson.h>

struct record_flow;
struct record_cflow;

/* strdup that keeps NULL as NULL; 0 or -ENOMEM. */
int record_dup_opt(const char *s, char **out);
/* json_string of s, or json null for NULL. */
json_t *record_json_str_or_null(const char *s);
/* A string member (NUL-free) or null/absent when may_be_null; strdup'd. */
int record_get_str(json_t *o, const char *key, int may_be_null, char **out);
/* An integer member in [min, max]; -EBADMSG otherwise. */
int record_get_int(json_t *o, const char *key, int64_t min, int64_t max,
    int64_t *out);
/* "client": absent or "public" 0, "confidential" 1, else -EBADMSG. */
int record_get_client(json_t *v, int *out);

/* The flows' JSON objects (NULL on ENOMEM) and their decoders (absent
 * or null: *out NULL and 0; -EBADMSG, -ENOMEM). */
json_t *record_flow_encode(const struct record_flow *f);
json_t *record_flow_code_encode(const struct record_cflow *f);
int record_flow_decode(json_t *fo, struct record_flow **out);
int record_flow_code_decode(json_t *fo, struct record_cflow **out);

#endif
