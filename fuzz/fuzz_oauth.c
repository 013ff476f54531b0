/*
 * fuzz_oauth.c - libFuzzer target for credd/oauth*.c: token, devicecode
 * and error bodies from the IdP (any HTTP status, classified by
 * oauth_class.c), and id_token payloads (oauth_id_token.c).
 *
 * Input: byte 0 picks the parser (bits 0-1) and the HTTP status (bits
 * 2-5, from a table of the statuses Entra sends, plus odd ones); the rest
 * is the response body. A token reply that parses has its id_token and
 * scope fed on to oauth_id_token_account and oauth_scope_resource, as
 * credd does.
 *
 * Must never: keep state between inputs.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "entra/secret.h"
#include "oauth.h"

#define FUZZ_TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define FUZZ_CLIENT "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[16] = {
	200,
	400,
	401,
	403,
	404,
	429,
	500,
	502,
	503,
	504,
	0,
	201,
	204,
	302,
	999,
	-1,
};

static void
account(const struct secret *id_token)
{
	struct oauth_account acct = { 0 };

	if (oauth_id_token_account(id_token, FUZZ_CLIENT, FUZZ_TENANT, &acct) ==
		0 &&
	    acct.oid == NULL)
		__builtin_trap(); /* success promises an oid */
	oauth_account_clear(&acct);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oauth_token tok = { 0 };
	struct oauth_device dev = { 0 };
	struct oauth_error err;
	struct secret *body;
	char res[512];
	long status;
	int64_t retry_after;
	unsigned sel;

	if (size < 1)
		return 0;
	sel = data[0];
	status = statuses[(sel >> 2) & 15];
	retry_after = (sel & 0x40) ? (int64_t)(sel & 0x3f) : -1;
	body = secret_new(data + 1, size - 1);
	if (body == NULL)
		return 0;
	memset(&err, 0, sizeof(err));
	switch (sel & 3) {
	case 0:
	case 1:
		if (oauth_parse_token(status, body, retry_after, &tok, &err) ==
		    0) {
			if (tok.access_token == NULL)
				__builtin_trap();
			if (tok.id_token != NULL)
				account(tok.id_token);
			if (tok.scope != NULL)
				(void)oauth_scope_resource(tok.scope, res,
				    sizeof(res));
		} else if (err.cls == OAUTH_OK ||
		    err.cls >= OAUTH_CLASS_COUNT) {
			__builtin_trap(); /* a failure is always classified */
		}
		oauth_token_clear(&tok);
		break;
	case 2:
		if (oauth_parse_device(status, body, retry_after, &dev, &err) ==
		    0) {
			if (dev.device_code == NULL || dev.user_code == NULL)
				__builtin_trap();
		}
		oauth_device_clear(&dev);
		break;
	default:
		account(body);
		(void)oauth_scope_resource(body->ptr, res, sizeof(res));
		break;
	}
	secret_free(body);
	return 0;
}
