/*
 * fuzz_authcode.c - libFuzzer target for the paste-back address parser
 * of credd/authcode.c (authcode_parse_redirect) and the callback query
 * parser under it, on arbitrary bytes as a user may paste them.
 *
 * Must never: accept what the contract refuses (it traps when an
 * accepted reply has no state of the right length, or both or neither
 * of a code and an error), or leak (ASan).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"

#include "authcode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int r, struct authcode_reply *rp)
{
	if (r == 0) {
		if (strlen(rp->state) != AUTHCODE_STATE_LEN)
			abort();
		if ((rp->code != NULL) == (rp->error[0] != '\0'))
			abort();
		if (rp->code != NULL &&
		    (rp->code->len == 0 ||
			strlen(rp->code->ptr) != rp->code->len))
			abort();
	} else if (r != -EMSGSIZE && r != -EXDEV && r != -EBADMSG &&
	    r != -ENOMEM)
		abort();
	authcode_reply_clear(rp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char native[] =
	    "https://login.microsoftonline.com/common/oauth2/nativeclient";
	struct authcode_reply rp;
	char *buf = malloc(sizeof(native) + size);

	if (buf == NULL)
		return 0;
	/* As pasted, and with the right prefix so the query is reached. */
	check(authcode_parse_redirect((const char *)data, size, native, &rp),
	    &rp);
	memcpy(buf, native, sizeof(native) - 1);
	buf[sizeof(native) - 1] = '?';
	memcpy(buf + sizeof(native), data, size);
	check(authcode_parse_redirect(buf, sizeof(native) + size, native, &rp),
	    &rp);
	check(authcode_parse_query((const char *)data, size, &rp), &rp);
	free(buf);
	return 0;
}
