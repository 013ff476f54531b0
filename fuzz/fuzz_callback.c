/*
 * fuzz_callback.c - libFuzzer target for the platform sign-in callback's
 * request parser (credd/callback_parse.c, called by callback.c on the
 * raw target of every request): the two paths, the login link id, the
 * method, the query (%-decoding, '+', duplicate and unknown keys, the
 * limits, the character set of each value).
 *
 * Input: "METHOD SP TARGET"; the target ends at the first NUL or the end
 * of the input (what MHD's URI log callback hands callback.c is a C
 * string). Without a space the whole input is the target of a GET.
 *
 * Must never: accept a request that breaks a documented rule (trapped
 * below: abort), return a code on a refusal, or read past its input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"

#include "callback_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
all_in(const char *s, size_t n, int lo, int hi, const char *extra_out)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < lo || (unsigned char)s[i] > hi ||
		    (extra_out != NULL && strchr(extra_out, s[i]) != NULL))
			return 0;
	return 1;
}

static int
is_state(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > CALLBACK_STATE_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
			(s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
			s[i] == '_' || s[i] == '.' || s[i] == '~'))
			return 0;
	return 1;
}

/* What an accepted request must be; abort() otherwise. */
static void
check_accepted(const char *method, const char *target,
    const struct callback_target *t)
{
	const struct secret *c = t->code;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		abort();
	if (t->is_head != (strcmp(method, "HEAD") == 0))
		abort();
	if (strlen(target) > CALLBACK_TARGET_MAX)
		abort();
	if (t->kind == CALLBACK_LOGIN) {
		if (strncmp(target, CALLBACK_LOGIN_PREFIX,
			strlen(CALLBACK_LOGIN_PREFIX)) != 0 ||
		    !callback_id_is_valid(t->id, strlen(t->id)) || c != NULL)
			abort();
		return;
	}
	if (t->kind != CALLBACK_REDEEM ||
	    strncmp(target, CALLBACK_REDIRECT_PATH "?",
		strlen(CALLBACK_REDIRECT_PATH "?")) != 0 ||
	    !is_state(t->state) || (c != NULL) == (t->has_error != 0))
		abort();
	if (c != NULL &&
	    (c->len == 0 || c->len > CALLBACK_CODE_MAX || c->ptr[c->len] ||
		strlen(c->ptr) != c->len ||
		!all_in(c->ptr, c->len, 0x21, 0x7e, NULL)))
		abort();
	if (t->has_error &&
	    (t->error[0] == '\0' ||
		!all_in(t->error, strlen(t->error), 0x21, 0x7e, NULL)))
		abort();
	if (!t->has_error && t->error_desc[0] != '\0')
		abort();
	if (!all_in(t->error_desc, strlen(t->error_desc), 0x20, 0x7e, NULL))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct callback_target t;
	char *buf, *sp, *target;
	const char *method = "GET";
	int r;

	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	sp = strchr(buf, ' ');
	target = buf;
	if (sp != NULL) {
		*sp = '\0';
		method = buf;
		target = sp + 1;
	}
	r = callback_parse(method, target, &t);
	if (r == 0)
		check_accepted(method, target, &t);
	else if (t.kind != CALLBACK_REFUSED || t.why == NULL ||
	    t.code != NULL ||
	    (t.status != 400 && t.status != 404 && t.status != 405 &&
		t.status != 414 && t.status != 500))
		abort();
	callback_target_clear(&t);
	free(buf);
	return 0;
}
