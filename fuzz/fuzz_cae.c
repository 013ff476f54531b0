/*
 * fuzz_cae.c - libFuzzer target for the claims challenge a peer passes in
 * a token request (credd/cae.c: cae_claims_parse, then cae_claims_merge
 * with the cp1 capability, as dispatch.c and flight.c use them).
 *
 * Input: the "claims" string as a client sends it (base64 of either
 * alphabet, padded or not, or JSON), cut at the first NUL (the protocol
 * decoder refuses a NUL in a string).
 *
 * Must never: accept something that is not one JSON object of at most
 * CAE_CLAIMS_MAX bytes, return a parse result that does not parse again
 * to itself (the compact form is what identical challenges compare by),
 * fail to merge an accepted object whose access_token is an object, or
 * read past what it was given.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cae.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	char *in, *out = NULL, *again = NULL, *merged = NULL;
	json_t *o, *at;
	int r;

	in = malloc(size + 1);
	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	r = cae_claims_parse(in, &out, &why);
	free(in);
	if (r < 0) {
		if (out != NULL || why == NULL ||
		    (r != -EBADMSG && r != -EMSGSIZE && r != -ENOMEM))
			abort();
		return 0;
	}
	o = json_loads(out, JSON_REJECT_DUPLICATES, NULL);
	if (o == NULL || !json_is_object(o))
		abort();
	/* The compact form is a fixed point. */
	if (cae_claims_parse(out, &again, &why) != 0 || strcmp(out, again) != 0)
		abort();
	at = json_object_get(o, "access_token");
	r = cae_claims_merge(out, "cp1", &merged);
	if (at == NULL || json_is_object(at)) {
		if (r == 0 &&
		    (merged == NULL || strstr(merged, "\"xms_cc\"") == NULL))
			abort();
		if (r != 0 && r != -ENOMEM)
			abort();
	} else if (r != -EBADMSG)
		abort();
	json_decref(o);
	free(merged);
	free(again);
	free(out);
	return 0;
}
