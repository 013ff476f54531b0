/*
 * oauth_int.h - JSON helpers oauth.c shares with oauth_id_token.c.
 * Private to credd/oauth*.c.
 */
#ifndef CREDD_OAUTH_INT_H
#define CREDD_OAUTH_INT_H

#include <stdbool.h>

#include <jansson.h>

/* A string field: *out NULL when absent or null; -EBADMSG if not a string. */
int oauth_json_get_str(const json_t *o, const char *key, const char **out);
/* True when s has a control character (below 0x20, or 0x7f). */
bool oauth_has_ctl(const char *s);

#endif
