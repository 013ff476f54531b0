/*
 * fuzz_assertion.c - libFuzzer target for the federated token check of
 * credd/assertion_file.c (assertion_token_check): the shape of a compact
 * JWS, base64url decoding of its payload, the JSON "exp" in it, on
 * arbitrary bytes as a rotated token file may hold them.
 *
 * Must never: touch the file system; accept what its contract refuses
 * (it traps when an accepted token is not three non-empty base64url
 * parts, or when a refusal comes without its sentence).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "assertion_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
is_b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Three non-empty base64url parts joined by two dots. */
static int
shape_ok(const char *s, size_t n)
{
	size_t i, dots = 0, run = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (run == 0 || ++dots > 2)
				return 0;
			run = 0;
		} else if (is_b64url_char(s[i])) {
			run++;
		} else {
			return 0;
		}
	}
	return dots == 2 && run > 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = (const char *)1;
	size_t tok_len = (size_t)-1;
	int64_t exp = -1;
	int r;

	r = assertion_token_check((const char *)data, size, 1767225600,
	    &tok_len, &exp, &why);
	if (tok_len > size)
		__builtin_trap();
	if (r == 0 &&
	    (why != NULL || !shape_ok((const char *)data, tok_len) ||
		(exp != 0 && exp <= 1767225600)))
		__builtin_trap();
	if (r != 0 && (why == NULL || (r != -EBADMSG && r != -EKEYEXPIRED)))
		__builtin_trap();
	return 0;
}
