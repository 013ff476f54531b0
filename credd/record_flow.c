/*
 * record_flow.c - the sign-in flows a record may carry while they run
 * (cluster mode): the device flow ("flow") and the authorization-code
 * flow ("code_flow"): free, deep copy, and their JSON inside the sealed
 * record (record.c seals it).
 *
 * Must never: let the device code or the PKCE verifier sit outside a
 * struct secret, or log.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "entra/secret.h"
#include "record.h"
#include "record_int.h"

void
record_flow_free(struct record_flow *f)
{
	if (f == NULL)
		return;
	secret_free(f->device_code);
	free(f->user_code);
	free(f->verification_uri);
	free(f->message);
	free(f->scope);
	free(f->node);
	free(f);
}

void
record_flow_code_free(struct record_cflow *f)
{
	if (f == NULL)
		return;
	secret_free(f->verifier);
	secret_wipe_str(f->state);
	secret_wipe_str(f->link);
	free(f->redirect_uri);
	secret_wipe_str(f->authorize_url);
	secret_wipe_str(f->signin_url);
	free(f->note);
	free(f->scope);
	free(f->node);
	free(f);
}

struct record_flow *
record_flow_dup(const struct record_flow *f)
{
	struct record_flow *d;

	if (f == NULL)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->expires_on = f->expires_on;
	d->interval = f->interval;
	d->device_code = secret_dup(f->device_code);
	if (d->device_code == NULL ||
	    record_dup_opt(f->user_code, &d->user_code) < 0 ||
	    record_dup_opt(f->verification_uri, &d->verification_uri) < 0 ||
	    record_dup_opt(f->message, &d->message) < 0 ||
	    record_dup_opt(f->scope, &d->scope) < 0 ||
	    record_dup_opt(f->node, &d->node) < 0) {
		record_flow_free(d);
		return NULL;
	}
	return d;
}

struct record_cflow *
record_flow_code_dup(const struct record_cflow *f)
{
	struct record_cflow *d;

	if (f == NULL)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->client = f->client;
	d->expires_on = f->expires_on;
	d->verifier = secret_dup(f->verifier);
	if (d->verifier == NULL || record_dup_opt(f->state, &d->state) < 0 ||
	    record_dup_opt(f->link, &d->link) < 0 ||
	    record_dup_opt(f->redirect_uri, &d->redirect_uri) < 0 ||
	    record_dup_opt(f->authorize_url, &d->authorize_url) < 0 ||
	    record_dup_opt(f->signin_url, &d->signin_url) < 0 ||
	    record_dup_opt(f->note, &d->note) < 0 ||
	    record_dup_opt(f->scope, &d->scope) < 0 ||
	    record_dup_opt(f->node, &d->node) < 0) {
		record_flow_code_free(d);
		return NULL;
	}
	return d;
}

/* The code flow's object; NULL on ENOMEM. */
json_t *
record_flow_code_encode(const struct record_cflow *f)
{
	return json_pack("{s:s%, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, "
			 "s:s, s:I}",
	    "verifier", f->verifier->ptr, f->verifier->len, "state", f->state,
	    "link", f->link, "redirect_uri", f->redirect_uri, "authorize_url",
	    f->authorize_url, "signin_url", f->signin_url, "note",
	    record_json_str_or_null(f->note), "scope", f->scope, "node",
	    f->node, "client", f->client ? "confidential" : "public",
	    "expires_on", (json_int_t)f->expires_on);
}

int
record_flow_decode(json_t *fo, struct record_flow **out)
{
	struct record_flow *f;
	json_t *dc;
	int e;

	*out = NULL;
	if (fo == NULL || json_is_null(fo))
		return 0;
	if (!json_is_object(fo))
		return -EBADMSG;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	dc = json_object_get(fo, "device_code");
	e = json_is_string(dc) && json_string_length(dc) > 0 ? 0 : -EBADMSG;
	if (e == 0 &&
	    (f->device_code = secret_new(json_string_value(dc),
		 json_string_length(dc))) == NULL)
		e = -ENOMEM;
	if (e == 0)
		e = record_get_str(fo, "user_code", 0, &f->user_code);
	if (e == 0)
		e = record_get_str(fo, "verification_uri", 0,
		    &f->verification_uri);
	if (e == 0)
		e = record_get_str(fo, "message", 1, &f->message);
	if (e == 0)
		e = record_get_str(fo, "scope", 0, &f->scope);
	if (e == 0)
		e = record_get_str(fo, "node", 0, &f->node);
	if (e == 0)
		e = record_get_int(fo, "expires_on", 0, INT64_MAX,
		    &f->expires_on);
	if (e == 0)
		e = record_get_int(fo, "interval", 1, 3600, &f->interval);
	if (e < 0) {
		record_flow_free(f);
		return e;
	}
	*out = f;
	return 0;
}

int
record_flow_code_decode(json_t *fo, struct record_cflow **out)
{
	struct record_cflow *f;
	json_t *v;
	int e;

	*out = NULL;
	if (fo == NULL || json_is_null(fo))
		return 0;
	if (!json_is_object(fo))
		return -EBADMSG;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	v = json_object_get(fo, "verifier");
	e = json_is_string(v) && json_string_length(v) > 0 ? 0 : -EBADMSG;
	if (e == 0 &&
	    (f->verifier = secret_new(json_string_value(v),
		 json_string_length(v))) == NULL)
		e = -ENOMEM;
	if (e == 0)
		e = record_get_str(fo, "state", 0, &f->state);
	if (e == 0)
		e = record_get_str(fo, "link", 0, &f->link);
	if (e == 0)
		e = record_get_str(fo, "redirect_uri", 0, &f->redirect_uri);
	if (e == 0)
		e = record_get_str(fo, "authorize_url", 0, &f->authorize_url);
	if (e == 0)
		e = record_get_str(fo, "signin_url", 0, &f->signin_url);
	if (e == 0)
		e = record_get_str(fo, "note", 1, &f->note);
	if (e == 0)
		e = record_get_str(fo, "scope", 0, &f->scope);
	if (e == 0)
		e = record_get_str(fo, "node", 0, &f->node);
	if (e == 0) {
		v = json_object_get(fo, "client");
		e = v != NULL ? record_get_client(v, &f->client) : -EBADMSG;
	}
	if (e == 0)
		e = record_get_int(fo, "expires_on", 0, INT64_MAX,
		    &f->expires_on);
	if (e < 0) {
		record_flow_code_free(f);
		return e;
	}
	*out = f;
	return 0;
}

json_t *
record_flow_encode(const struct record_flow *f)
{
	return json_pack("{s:s%, s:s, s:s, s:o, s:s, s:s, s:I, s:I}",
	    "device_code", f->device_code->ptr, f->device_code->len,
	    "user_code", f->user_code, "verification_uri", f->verification_uri,
	    "message", record_json_str_or_null(f->message), "scope", f->scope,
	    "node", f->node, "expires_on", (json_int_t)f->expires_on,
	    "interval", (json_int_t)f->interval);
}
