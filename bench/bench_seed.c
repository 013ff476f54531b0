/*
 * bench_seed.c - synthetic users for the scale benchmarks: sealed
 * records written straight into credd's file store, copied from one
 * real consent (its account and refresh token), so that credd can
 * refresh for every synthetic user against the emulator.
 *
 *   bench_seed --key FILE --store DIR --tenant GUID --template USER
 *	--prefix P --first-uid U --count N [--start I] [--run-as NAME]
 *	[--form-out FILE --client-id ID --scope SCOPE]
 *	Writes records P<I>..P<N-1> (6 digits) for uids U+I.., each a copy of USER's
 *	record (record_save through the sealing key and store_file, as
 *	credd writes them). Run as root with --run-as credd: the key is
 *	read first, then privileges drop to the store's owner.
 *	--form-out writes the refresh-token grant for USER's token as an
 *	application/x-www-form-urlencoded body (mode 0600), for the curl
 *	floor of bench_refresh; the token never appears on stdout or argv.
 *   bench_seed smoke
 *	A fresh key and store in a temp dir, a fake template, 20 records
 *	seeded and read back (CTest, no root).
 *
 * Must never: print a refresh token, or write a record unsealed.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <sodium.h>

#include "entra/secret.h"
#include "fixture.h"

#include "record.h"
#include "seal.h"
#include "store.h"

#define SEED_MAX 1000000

struct seed_opts {
	const char *key, *store, *tenant, *tmpl, *prefix, *run_as;
	const char *form_out, *client_id, *scope;
	long first_uid, count, start;
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bench_seed --key FILE --store DIR --tenant GUID --template USER\n"
	    "           --prefix P --first-uid U --count N [--start I] [--run-as NAME]\n"
	    "           [--form-out FILE --client-id ID --scope SCOPE]\n"
	    "       bench_seed smoke\n");
	exit(2);
}

static int
drop_to(const char *name)
{
	struct passwd *pw = getpwnam(name);

	if (pw == NULL)
		return -ENOENT;
	if (setgroups(0, NULL) < 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return -errno;
	return 0;
}

/* Write the refresh grant body for tmpl's token to fd (then closed). */
static int
write_form(int fd, const struct seed_opts *o, const struct record *tmpl)
{
	char *rt, *cid, *sc;
	int r = 0;

	rt = curl_easy_escape(NULL, tmpl->refresh_token->ptr,
	    (int)tmpl->refresh_token->len);
	cid = curl_easy_escape(NULL, o->client_id, 0);
	sc = curl_easy_escape(NULL, o->scope, 0);
	if (rt == NULL || cid == NULL || sc == NULL ||
	    dprintf(fd,
		"grant_type=refresh_token&client_id=%s&scope=%s&refresh_token=%s",
		cid, sc, rt) < 0)
		r = -EIO;
	if (rt != NULL) {
		secret_wipe(rt, strlen(rt));
		curl_free(rt);
	}
	curl_free(cid);
	curl_free(sc);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

static int
seed(struct store *st, const struct seal *seal, const struct seed_opts *o,
    const struct record *tmpl)
{
	char name[64];
	struct record *r;
	long i;
	int e;

	for (i = o->start; i < o->count; i++) {
		snprintf(name, sizeof(name), "%s%06ld", o->prefix, i);
		r = record_dup(tmpl);
		if (r == NULL)
			return -ENOMEM;
		free(r->user);
		r->user = strdup(name);
		r->uid = (uid_t)(o->first_uid + i);
		r->version = 0;
		if (r->user == NULL) {
			record_free(r);
			return -ENOMEM;
		}
		e = record_save(st, seal, o->tenant, r);
		if (e == -ESTALE) {
			/* Left from an earlier run: overwrite it. */
			struct record *old = NULL;

			if (record_load(st, seal, o->tenant, name, &old) == 0) {
				r->version = old->version;
				e = record_save(st, seal, o->tenant, r);
			}
			record_free(old);
		}
		record_free(r);
		if (e < 0) {
			fprintf(stderr, "bench_seed: %s: %s\n", name,
			    strerror(-e));
			return e;
		}
	}
	return 0;
}

static int
run_seed(const struct seed_opts *o)
{
	struct seal *seal = NULL;
	struct store *st = NULL;
	struct record *tmpl = NULL;
	int form_fd = -1, e;

	e = seal_load(o->key, &seal);
	if (e < 0) {
		fprintf(stderr, "bench_seed: key %s: %s\n", o->key,
		    strerror(-e));
		return 1;
	}
	if (o->form_out != NULL) {
		form_fd = open(o->form_out,
		    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0600);
		if (form_fd < 0) {
			perror(o->form_out);
			return 1;
		}
	}
	if (o->run_as != NULL && (e = drop_to(o->run_as)) < 0) {
		fprintf(stderr, "bench_seed: cannot become %s: %s\n", o->run_as,
		    strerror(-e));
		return 1;
	}
	e = store_file_open(o->store, &st);
	if (e == 0)
		e = record_load(st, seal, o->tenant, o->tmpl, &tmpl);
	if (e == 0 && tmpl->refresh_token == NULL)
		e = -ENOKEY;
	if (e < 0) {
		fprintf(stderr, "bench_seed: template %s in %s: %s\n", o->tmpl,
		    o->store, strerror(-e));
		return 1;
	}
	if (form_fd >= 0 && write_form(form_fd, o, tmpl) < 0) {
		fprintf(stderr, "bench_seed: cannot write %s\n", o->form_out);
		return 1;
	}
	e = seed(st, seal, o, tmpl);
	record_free(tmpl);
	store_close(st);
	seal_free(seal);
	if (e < 0)
		return 1;
	printf("{\"seeded\":%ld,\"prefix\":\"%s\",\"first_uid\":%ld}\n",
	    o->count - o->start, o->prefix, o->first_uid);
	return 0;
}

static int
run_smoke(void)
{
	const char *dir = fixture_tmpdir("bench_seed");
	char key[PATH_MAX], store[PATH_MAX];
	struct seed_opts o = { .tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47",
		.tmpl = "template",
		.prefix = "sm",
		.first_uid = 300000,
		.count = 20 };
	struct seal *seal = NULL;
	struct store *st = NULL;
	struct record *t, *back = NULL;
	uint32_t id;
	int e;

	if (dir == NULL)
		return 1;
	snprintf(key, sizeof(key), "%s/keys", dir);
	snprintf(store, sizeof(store), "%s/state", dir);
	if (mkdir(store, 0700) < 0 || seal_keygen(key, 1, &id) < 0 ||
	    seal_load(key, &seal) < 0 || store_file_open(store, &st) < 0) {
		fprintf(stderr, "smoke: setup failed\n");
		return 1;
	}
	t = record_new("template", 1000);
	t->oid = strdup("00000000-0000-0000-0000-000000000001");
	t->tid = strdup(o.tenant);
	t->username = strdup("template@contoso.com");
	t->refresh_token = secret_from_str("not-a-real-refresh-token");
	t->created = t->updated = t->last_refresh = (int64_t)time(NULL);
	e = record_set_scopes(t, "https://storage.azure.com/.default");
	if (e == 0)
		e = seed(st, seal, &o, t);
	if (e == 0)
		e = record_load(st, seal, o.tenant, "sm000019", &back);
	if (e == 0 && (back->uid != 300019 || back->refresh_token == NULL))
		e = -EBADMSG;
	record_free(back);
	record_free(t);
	store_close(st);
	seal_free(seal);
	fprintf(stderr, "smoke: %s\n", e == 0 ? "ok" : strerror(-e));
	/* The temp dir holds only sealed blobs and a test key: remove it. */
	if (fixture_rmtree(dir) != 0)
		fprintf(stderr, "smoke: cannot remove %s\n", dir);
	return e == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct seed_opts o = { .first_uid = -1 };
	int i;

	if (sodium_init() < 0)
		return 1;
	umask(077);
	if (argc == 2 && strcmp(argv[1], "smoke") == 0)
		return run_smoke();
	for (i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];

		if (strcmp(k, "--key") == 0)
			o.key = v;
		else if (strcmp(k, "--store") == 0)
			o.store = v;
		else if (strcmp(k, "--tenant") == 0)
			o.tenant = v;
		else if (strcmp(k, "--template") == 0)
			o.tmpl = v;
		else if (strcmp(k, "--prefix") == 0)
			o.prefix = v;
		else if (strcmp(k, "--run-as") == 0)
			o.run_as = v;
		else if (strcmp(k, "--form-out") == 0)
			o.form_out = v;
		else if (strcmp(k, "--client-id") == 0)
			o.client_id = v;
		else if (strcmp(k, "--scope") == 0)
			o.scope = v;
		else if (strcmp(k, "--first-uid") == 0)
			o.first_uid = atol(v);
		else if (strcmp(k, "--count") == 0)
			o.count = atol(v);
		else if (strcmp(k, "--start") == 0)
			o.start = atol(v);
		else
			usage();
	}
	if (i != argc || o.key == NULL || o.store == NULL || o.tenant == NULL ||
	    o.tmpl == NULL || o.prefix == NULL || strlen(o.prefix) > 24 ||
	    o.first_uid < 1 || o.count < 0 || o.count > SEED_MAX ||
	    o.start < 0 || o.start > o.count ||
	    (o.form_out != NULL && (o.client_id == NULL || o.scope == NULL)))
		usage();
	return run_seed(&o);
}
