/*
 * fuzz_config.c - libFuzzer target for credd/config*.c: the INI parser
 * (sections, sorted key tables, value checks, file:line errors, the
 * [entra] cloud presets and @NAME scopes) on arbitrary bytes, then the
 * lookups credd makes on a config that parsed and its cloud warnings.
 *
 * Must never: touch the file system (config_parse reads the buffer only).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A warning is one terminated line of bounded length. */
static void
check_warning(void *arg, const char *msg)
{
	(void)arg;
	if (strnlen(msg, 1024) >= 1024 || strchr(msg, '\n') != NULL)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cf = NULL;
	char err[256];

	err[0] = '\0';
	if (config_parse("fuzz.conf", (const char *)data, size, &cf, err,
		sizeof(err)) == 0) {
		(void)config_default_scope(cf);
		(void)config_scope_resolve(cf, "storage");
		(void)config_scope_resolve(cf, "default");
		/* The cross-cloud warnings: hosts cut from any scope. */
		(void)config_cloud_warnings(cf, check_warning, NULL);
		config_free(cf);
	} else if (strnlen(err, sizeof(err)) == sizeof(err)) {
		__builtin_trap(); /* the message is always terminated */
	}
	return 0;
}
