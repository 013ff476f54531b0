/*
 * call.h - credctl's connection to credd and its requests (call.c).
 *
 * Must never: declare anything that prints a reply or runs a command.
 */
#ifndef CREDCTL_CALL_H
#define CREDCTL_CALL_H

#include <stdint.h>
#include <jansson.h>

#include "entra/client.h"

#define CALL_DEADLINE_MS 30000 /* per request */

/*
 * One run's connection to credd: opened by the first call, closed after
 * a transport failure (the next call reconnects) and by main.
 */
struct ctx {
	const char *socket; /* borrowed: argv or the environment */
	int fd;		    /* -1 until the first call */
};

/* {"v":1,"op":op}, owned by the caller; NULL (printed) on ENOMEM. */
json_t *call_new_request(const char *op);
/*
 * Send req, get *resp (an ok or an error reply, owned by the caller) and
 * EXIT_OK, or an exit code with the transport failure printed. extra_ms
 * extends the deadline (a login's wait).
 */
int call_raw(struct ctx *c, const json_t *req, json_t **resp, int64_t extra_ms);
/* Request -> ok reply in *resp and EXIT_OK, or an exit code (printed). */
int call_roundtrip(struct ctx *c, json_t *req, json_t **resp, int64_t extra_ms);
/* call_roundtrip of a request with no fields but op ({"v":1,"op":op}). */
int call_op(struct ctx *c, const char *op, json_t **resp);
/*
 * A token request for scope (NULL: credd's default) valid for min_valid
 * seconds: EXIT_OK and the ok reply in *resp, or an exit code. An error
 * reply is left in *err_resp (EXIT_ERR) for the caller to word when
 * err_resp is not NULL, else printed.
 */
int call_token(struct ctx *c, const char *scope, int64_t min_valid,
    json_t **resp, json_t **err_resp);
/* The same with a claims challenge (NULL: none; an ordinary token). */
int call_token_claims(struct ctx *c, const char *scope, int64_t min_valid,
    const char *claims, json_t **resp, json_t **err_resp);
/*
 * The same request without a JSON tree on the usual path: EXIT_OK with
 * the ok reply in *tok (client_token_clear it) when its strings are
 * plain, or in *resp (owned) otherwise; or an exit code with the error
 * printed. min_valid < 0 leaves credd's default.
 */
int call_token_bytes(struct ctx *c, const char *scope, int64_t min_valid,
    struct client_token *tok, json_t **resp);

#endif
