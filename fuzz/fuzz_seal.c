/*
 * fuzz_seal.c - libFuzzer target for the store's read path: seal_open()
 * on an arbitrary blob with a fixed test key ring (as if a store file or
 * database row had been replaced by an attacker who lacks the key), and
 * record_decode() on arbitrary plaintext (what a record holds once opened;
 * reachable only with the key, but it is still a parser).
 *
 * Input: byte 0 bit 0 picks seal_open (0) or record_decode (1); bit 1
 * picks the user the blob is opened for. The rest is the blob/plaintext.
 * A blob that opens is decoded too, as record_load does.
 *
 * Must never: keep state between inputs besides the key ring.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "entra/secret.h"
#include "record.h"
#include "seal.h"

#define FUZZ_TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"

/* Test keys only: 32 bytes of 0x11 (id 1, active) and of 0x22 (id 2). */
static const char fuzz_ring[] =
    "key 1 ERERERERERERERERERERERERERERERERERERERERERE= active\n"
    "key 2 IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=\n";

static struct seal *ring;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
decode(const struct secret *plain)
{
	struct record *r = NULL;

	if (record_decode(plain, 7, &r) == 0 && r == NULL)
		__builtin_trap();
	record_free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct secret *plain = NULL;
	const char *user;

	if (ring == NULL &&
	    seal_load_buf(fuzz_ring, sizeof(fuzz_ring) - 1, &ring) < 0)
		__builtin_trap();
	if (size < 1)
		return 0;
	user = (data[0] & 2) ? "entra_bob" : "entra_alice";
	if ((data[0] & 1) == 0) {
		(void)seal_blob_key_id(data + 1, size - 1);
		if (seal_open(ring, FUZZ_TENANT, user, data + 1, size - 1,
			&plain) == 0)
			decode(plain);
	} else {
		plain = secret_new(data + 1, size - 1);
		if (plain != NULL)
			decode(plain);
	}
	secret_free(plain);
	return 0;
}
