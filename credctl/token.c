/*
 * token.c - `credctl token [SCOPE|ALIAS]`: an access token for the
 * caller, printed bare, with its details as JSON (--json), as shell
 * assignments (--env) or as an HTTP Authorization header (--header).
 * --cae asks for a CAE token and --claims passes a resource's claims
 * challenge (docs/protocol.md); both take the JSON request path.
 *
 * Must never: print the token anywhere but stdout, leave a copy in a
 * stdio buffer or in memory that is freed unwiped, or print an --env
 * value that a shell could split or expand.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "entra/proto.h"
#include "entra/secret.h"

#include "call.h"
#include "cmd.h"
#include "exit.h"
#include "opts.h"
#include "out.h"

/* Format into a wiped buffer: line + token, assembled piecewise. */
static struct secret *
token_line(const struct opts *o, const struct secret *tok, const char *type,
    int64_t expires_on)
{
	struct secret *out;
	size_t cap, n = 0, i;
	char *p;

	cap = tok->len * 4 + 256; /* quoting at most quadruples */
	p = malloc(cap);
	if (p == NULL)
		return NULL;
#define PUT(s, l)                                                              \
	do {                                                                   \
		memcpy(p + n, (s), (l));                                       \
		n += (l);                                                      \
	} while (0)
	if (o->is_env) {
		PUT("AZURE_ACCESS_TOKEN=", 19);
		if (out_is_shell_safe(tok->ptr)) {
			PUT(tok->ptr, tok->len);
		} else {
			PUT("'", 1);
			for (i = 0; i < tok->len; i++) {
				if (tok->ptr[i] == '\'')
					PUT("'\\''", 4);
				else
					PUT(tok->ptr + i, 1);
			}
			PUT("'", 1);
		}
		n += (size_t)snprintf(p + n, cap - n,
		    "\nAZURE_ACCESS_TOKEN_EXPIRES_ON=%lld\n",
		    (long long)expires_on);
	} else if (o->is_header) {
		n += (size_t)snprintf(p + n, cap - n, "Authorization: %s ",
		    type != NULL && out_is_shell_safe(type) &&
			    strlen(type) < 32 ?
			type :
			"Bearer");
		PUT(tok->ptr, tok->len);
		PUT("\n", 1);
	} else {
		PUT(tok->ptr, tok->len);
		PUT("\n", 1);
	}
#undef PUT
	out = secret_new(p, n);
	secret_wipe(p, cap);
	free(p);
	return out;
}

/* Print tok bare, as --env or as --header. */
static int
token_print_secret(const struct opts *o, const struct secret *tok,
    const char *type, int64_t expires_on)
{
	return out_secret_take(token_line(o, tok, type, expires_on));
}

static int
token_print(const struct opts *o, json_t *resp)
{
	struct secret *tok;
	json_t *out, *v;
	const char *keys[] = { "access_token", "token_type", "expires_on",
		"scope", "account" };
	size_t i;
	int r;

	if (o->is_json) {
		out = json_object();
		if (out == NULL)
			return EXIT_ERR;
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			v = json_object_get(resp, keys[i]);
			if (v != NULL)
				(void)json_object_set(out, keys[i], v);
		}
		r = out_json(out);
		json_decref(out); /* wiped by our allocator */
		return r;
	}
	tok = secret_from_str(out_jstr(resp, "access_token"));
	if (tok == NULL) {
		out_errorf(
		    "credd's reply has no access token; check credd's log");
		return EXIT_ERR;
	}
	r = token_print_secret(o, tok, out_jstr(resp, "token_type"),
	    out_jint(resp, "expires_on", 0));
	secret_free(tok);
	return r;
}

int
token_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv)
{
	static const int allowed[] = { OPT_MIN_VALID, OPT_JSON, OPT_ENV,
		OPT_HEADER, OPT_CAE, OPT_CLAIMS, 0 };
	json_t *req = NULL, *resp = NULL;
	struct opts o;
	int r;

	r = opts_parse(c, cmd, argc, argv, allowed, 1, &o);
	if (r >= 0)
		return r;
	if (o.is_json + o.is_env + o.is_header > 1) {
		out_errorf("token: choose one of --json, --env and --header");
		return EXIT_USAGE;
	}
	if (o.npos == 1 &&
	    (o.pos[0][0] == '\0' || strlen(o.pos[0]) > PROTO_STR_MAX)) {
		out_errorf("token: the scope must be 1..%d bytes",
		    PROTO_STR_MAX);
		return EXIT_USAGE;
	}
	if (!o.is_json && !o.is_cae && o.claims == NULL) {
		/* The common case: bytes both ways, no JSON tree (issue 16). */
		struct client_token tok;

		r = call_token_bytes(c, o.npos == 1 ? o.pos[0] : NULL,
		    o.min_valid, &tok, &resp);
		if (r == EXIT_OK && tok.access_token != NULL)
			r = token_print_secret(&o, tok.access_token,
			    tok.token_type, tok.expires_on);
		else if (r == EXIT_OK)
			r = token_print(&o, resp);
		client_token_clear(&tok);
		json_decref(resp);
		return r;
	}
	req = call_new_request("token");
	if (req == NULL)
		return EXIT_ERR;
	if ((o.npos == 1 &&
		json_object_set_new(req, "scope", json_string(o.pos[0])) < 0) ||
	    (o.min_valid >= 0 &&
		json_object_set_new(req, "min_valid",
		    json_integer(o.min_valid)) < 0) ||
	    (o.is_cae && json_object_set_new(req, "cae", json_true()) < 0) ||
	    (o.claims != NULL &&
		json_object_set_new(req, "claims", json_string(o.claims)) <
		    0)) {
		json_decref(req);
		out_errorf("out of memory");
		return EXIT_ERR;
	}
	r = call_roundtrip(c, req, &resp, 0);
	json_decref(req);
	if (r == EXIT_OK)
		r = token_print(&o, resp);
	json_decref(resp);
	return r;
}
