/*
 * migrate.c - copy sealed records between store backends, and the
 * `credd migrate` command around it.
 *
 * Must never: open a blob (no key is loaded: the records stay sealed),
 * print a blob or the DSN (it may carry a password), or overwrite a
 * different record in the target.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "migrate.h"
#include "store.h"

#define MIGRATE_PAGE 64

/*
 * The target already has user (put_if(0) lost): fine when it holds the
 * same bytes. 0 skipped, -EEXIST different, -errno.
 */
static int
same_in_target(struct store *to, const char *tenant, const char *user,
    const struct blob *b)
{
	struct blob cur = { 0 };
	int r;

	r = to->ops->get(to, tenant, user, &cur);
	if (r == -ENOENT)
		return -EAGAIN; /* deleted meanwhile: try the put again */
	if (r < 0)
		return r;
	r = cur.len == b->len &&
		(b->len == 0 || memcmp(cur.data, b->data, b->len) == 0) ?
	    0 :
	    -EEXIST;
	blob_clear(&cur);
	return r;
}

/* Copy one record. 1 written, 0 already there, -errno. */
static int
copy_one(struct store *to, const char *tenant, const struct store_entry *e)
{
	uint64_t nv = 0;
	int r, tries;

	for (tries = 0; tries < 3; tries++) {
		r = to->ops->put_if(to, tenant, e->user, e->blob.data,
		    e->blob.len, 0, &nv);
		if (r == 0)
			return 1;
		/* file: -ESTALE present, -EEXIST another tenant's file */
		if (r != -ESTALE && r != -EEXIST)
			return r;
		r = same_in_target(to, tenant, e->user, &e->blob);
		if (r != -EAGAIN)
			return r;
	}
	return -EEXIST;
}

struct copy_to {
	struct store *to;
	const char *tenant;
};

static int
copy_cb(void *arg, const struct store_entry *e)
{
	const struct copy_to *c = arg;

	return copy_one(c->to, c->tenant, e);
}

int
store_migrate(struct store *from, struct store *to, const char *tenant,
    size_t *count)
{
	struct copy_to c = { to, tenant };

	*count = 0;
	if (from == NULL || to == NULL || tenant == NULL || from == to)
		return -EINVAL;
	return store_each(from, tenant, MIGRATE_PAGE, copy_cb, &c, count);
}

static void
migrate_usage(void)
{
	fprintf(stderr,
	    "usage: credd migrate -c CONFIG --from file|postgres "
	    "--to file|postgres\n");
}

static int
is_backend(const char *s)
{
	return s != NULL &&
	    (strcmp(s, "file") == 0 || strcmp(s, "postgres") == 0);
}

/* Open the named backend with cf's settings; create a missing file dir. */
static int
migrate_open(const struct config *cf, const char *backend, int is_target,
    struct store **out)
{
	*out = NULL;
	if (strcmp(backend, "file") == 0) {
		if (is_target && mkdir(cf->store_path, 0700) < 0 &&
		    errno != EEXIST)
			return -errno;
		return store_file_open(cf->store_path, out);
	}
#ifdef ENTRA_HAVE_PG
	if (cf->dsn == NULL)
		return -EDESTADDRREQ;
	return store_pg_open(cf->dsn, cf->node, out);
#else
	return -EPROTONOSUPPORT;
#endif
}

int
migrate_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = NULL, *from = NULL, *to = NULL, *what;
	struct store *src = NULL, *dst = NULL;
	struct config *cf = NULL;
	char err[512];
	size_t count = 0;
	int c, r, status = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 't':
			to = optarg;
			break;
		default:
			migrate_usage();
			return 2;
		}
	}
	if (optind != argc || conf == NULL || !is_backend(from) ||
	    !is_backend(to) || strcmp(from, to) == 0) {
		migrate_usage();
		return 2;
	}
	r = config_load(conf, &cf, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "credd migrate: %s\n", err);
		return 1;
	}
	what = from;
	r = migrate_open(cf, from, 0, &src);
	if (r == 0) {
		what = to;
		r = migrate_open(cf, to, 1, &dst);
	}
	if (r < 0) {
		fprintf(stderr,
		    "credd migrate: cannot open the %s store: %s%s\n", what,
		    strerror(-r),
		    r == -EDESTADDRREQ ? " (no [store] dsn in the config)" :
					 "");
		goto out;
	}
	r = store_migrate(src, dst, cf->tenant, &count);
	if (r < 0) {
		fprintf(stderr,
		    "credd migrate: stopped after %zu records: "
		    "%s%s\n",
		    count, strerror(-r),
		    r == -EEXIST ?
			" (the target holds a different record for a user)" :
			"");
		goto out;
	}
	printf("credd migrate: %zu records copied from %s to %s\n", count, from,
	    to);
	status = 0;
out:
	store_close(src);
	store_close(dst);
	config_free(cf);
	return status;
}
