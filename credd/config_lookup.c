/*
 * config_lookup.c - what credd asks a loaded config at run time: which
 * scope a client's scope argument names, the default scope, the expected
 * account name for a user (account_match), the SDK endpoint's URL and
 * whether a resource is on its allowed list.
 *
 * Must never: change the config (every function takes it const), or log.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

const char *
config_scope_resolve(const struct config *cf, const char *arg)
{
	size_t i;

	if (cf == NULL)
		return NULL;
	if (arg == NULL || *arg == '\0')
		return config_default_scope(cf);
	for (i = 0; i < cf->nscopes; i++)
		if (strcmp(cf->scopes[i].alias, arg) == 0)
			return cf->scopes[i].scope;
	for (i = 0; i < cf->nscopes; i++)
		if (strcmp(cf->scopes[i].scope, arg) == 0)
			return cf->scopes[i].scope;
	return NULL;
}

const char *
config_default_scope(const struct config *cf)
{
	size_t i;

	if (cf == NULL || cf->default_alias == NULL)
		return NULL;
	for (i = 0; i < cf->nscopes; i++)
		if (strcmp(cf->scopes[i].alias, cf->default_alias) == 0)
			return cf->scopes[i].scope;
	return NULL;
}

int
config_account_match(const struct config *cf, const char *user, char *dst,
    size_t dstsz)
{
	const char *s, *add;
	size_t n = 0, addlen;
	char pct[2] = "%";

	if (dst != NULL && dstsz > 0)
		dst[0] = '\0';
	if (cf == NULL || cf->account_match == NULL)
		return -ENOENT;
	if (user == NULL || dst == NULL || dstsz == 0)
		return -EINVAL;
	for (s = cf->account_match; *s != '\0'; s++) {
		add = s;
		addlen = 1;
		if (s[0] == '%' && s[1] == 'u') {
			add = user;
			addlen = strlen(user);
			s++;
		} else if (s[0] == '%' && s[1] == '%') {
			add = pct;
			s++;
		}
		if (addlen >= dstsz - n) {
			dst[0] = '\0';
			return -ENAMETOOLONG;
		}
		memcpy(dst + n, add, addlen);
		n += addlen;
	}
	dst[n] = '\0';
	return 0;
}

int
config_msi_endpoint(const struct config *cf, char *dst, size_t dstsz)
{
	int n;

	if (dst != NULL && dstsz > 0)
		dst[0] = '\0';
	if (cf == NULL || cf->msi_listen == NULL)
		return -ENOENT;
	n = snprintf(dst, dstsz, "http://%s/msi/token", cf->msi_listen);
	if (n < 0 || (size_t)n >= dstsz) {
		if (dstsz > 0)
			dst[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

int
config_msi_resource_allowed(const struct config *cf, const char *resource)
{
	size_t i;

	if (cf == NULL || resource == NULL)
		return 0;
	for (i = 0; i < cf->msi_nresources; i++)
		if (strcmp(cf->msi_resources[i], resource) == 0)
			return 1;
	return 0;
}
