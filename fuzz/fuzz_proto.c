/*
 * fuzz_proto.c - libFuzzer target for lib/proto.c: the request decoder
 * credd runs on every line a local peer sends, and the response decoder
 * credctl and pam_entra run on what the socket says.
 *
 * Must never: keep state between inputs (every object is freed here).
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "entra/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_request req = { 0 };
	const char *code = NULL, *msg = NULL;
	json_t *resp = NULL;
	char *line;
	size_t len;

	if (proto_request_decode((const char *)data, size, &req, &code, &msg) ==
	    0)
		(void)proto_op_name(req.op);
	else if (code == NULL || msg == NULL)
		__builtin_trap(); /* contract: a failure names a wire error */
	proto_request_clear(&req);

	if (proto_response_decode((const char *)data, size, &resp) == 0) {
		(void)proto_response_error(resp);
		/* Re-encoding what was accepted must not fail oddly. */
		line = proto_encode(resp, &len);
		free(line);
		json_decref(resp);
	}
	return 0;
}
