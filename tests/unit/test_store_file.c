/*
 * test_store_file.c - the file backend: roundtrip, compare-and-swap,
 * modes, symlinks, crash leftovers, tenants, list paging, and CAS between
 * two processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"
#include "test.h"

static const char *root;

static int
put_str(struct store *st, const char *tenant, const char *user, const char *s,
    uint64_t expect, uint64_t *nv)
{
	return st->ops->put_if(st, tenant, user, (const uint8_t *)s, strlen(s),
	    expect, nv);
}

static int
blob_is(const struct blob *b, const char *s)
{
	return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

static int
read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

TEST(test_roundtrip)
{
	const char *d = fixture_subdir(root);
	struct store *st = NULL;
	struct blob b = { 0 };
	uint64_t v = 0;
	struct stat sb;
	static const uint8_t bin[] = { 0, 1, 2, 0xff, 0 };

	ASSERT_EQ(store_file_open(d, &st), 0);
	ASSERT_STREQ(st->ops->name, "file");
	ASSERT_ERR(st->ops->get(st, "t", "alice", &b), -ENOENT);
	ASSERT_EQ(put_str(st, "t", "alice", "hello", 0, &v), 0);
	ASSERT_EQ(v, 1);
	ASSERT_EQ(st->ops->get(st, "t", "alice", &b), 0);
	ASSERT_TRUE(blob_is(&b, "hello"));
	ASSERT_EQ(b.version, 1);
	blob_clear(&b);
	ASSERT_EQ(put_str(st, "t", "alice", "world!", 1, &v), 0);
	ASSERT_EQ(v, 2);
	ASSERT_EQ(st->ops->get(st, "t", "alice", &b), 0);
	ASSERT_TRUE(blob_is(&b, "world!"));
	ASSERT_EQ(b.version, 2);
	blob_clear(&b);
	/* Binary and empty blobs. */
	ASSERT_EQ(st->ops->put_if(st, "t", "bin", bin, sizeof(bin), 0, &v), 0);
	ASSERT_EQ(st->ops->get(st, "t", "bin", &b), 0);
	ASSERT_TRUE(b.len == sizeof(bin) && memcmp(b.data, bin, b.len) == 0);
	blob_clear(&b);
	ASSERT_EQ(st->ops->put_if(st, "t", "empty", NULL, 0, 0, &v), 0);
	ASSERT_EQ(st->ops->get(st, "t", "empty", &b), 0);
	ASSERT_EQ(b.len, 0);
	blob_clear(&b);
	/* Names outside [a-z0-9_.-] are escaped, not refused. */
	ASSERT_EQ(put_str(st, "t", "Bob@EXAMPLE.com", "x", 0, &v), 0);
	ASSERT_EQ(stat(fixture_path(d,
			   "u-%42ob%40%45%58%41%4D%50%4C%45.com.rec"),
		      &sb),
	    0);
	ASSERT_EQ(put_str(st, "t", "../etc", "x", 0, &v), 0);
	ASSERT_EQ(stat(fixture_path(d, "u-..%2Fetc.rec"), &sb), 0);
	ASSERT_ERR(put_str(st, "t", "", "x", 0, &v), -EINVAL);
	ASSERT_ERR(put_str(st, "", "u", "x", 0, &v), -EINVAL);
	ASSERT_ERR(
	    st->ops->get(st, "t",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		&b),
	    -EINVAL);
	/* Delete. */
	ASSERT_EQ(st->ops->del_if(st, "t", "alice", 2), 0);
	ASSERT_ERR(st->ops->get(st, "t", "alice", &b), -ENOENT);
	ASSERT_ERR(st->ops->del_if(st, "t", "alice", 2), -ENOENT);
	ASSERT_EQ(st->ops->notify_fd(st), -1);
	{
		char *u = (char *)1;

		ASSERT_EQ(st->ops->notify_next(st, &u), 0);
		ASSERT_TRUE(u == NULL);
	}
	store_close(st);
	store_close(NULL);
	blob_clear(NULL);
	store_entries_free(NULL, 0);
}

TEST(test_cas)
{
	const char *d = fixture_subdir(root);
	struct store *st = NULL;
	struct blob b = { 0 };
	uint64_t v = 99;

	ASSERT_EQ(store_file_open(d, &st), 0);
	ASSERT_ERR(put_str(st, "t", "u", "x", 1, &v), -ESTALE); /* absent */
	ASSERT_EQ(v, 0);
	ASSERT_EQ(put_str(st, "t", "u", "one", 0, &v), 0);
	ASSERT_ERR(put_str(st, "t", "u", "x", 0, &v),
	    -ESTALE); /* create-only */
	ASSERT_EQ(put_str(st, "t", "u", "two", 1, &v), 0);
	ASSERT_ERR(put_str(st, "t", "u", "x", 1, &v), -ESTALE); /* stale */
	ASSERT_ERR(put_str(st, "t", "u", "x", 3, &v), -ESTALE); /* future */
	ASSERT_ERR(st->ops->del_if(st, "t", "u", 1), -ESTALE);
	ASSERT_EQ(st->ops->get(st, "t", "u", &b), 0);
	ASSERT_TRUE(blob_is(&b, "two"));
	ASSERT_EQ(b.version, 2);
	blob_clear(&b);
	ASSERT_EQ(st->ops->del_if(st, "t", "u", 2), 0);
	/* Re-created after delete: versions start at 1 again. */
	ASSERT_EQ(put_str(st, "t", "u", "three", 0, &v), 0);
	ASSERT_EQ(v, 1);
	store_close(st);
}

TEST(test_tenants)
{
	const char *d = fixture_subdir(root);
	struct store *st = NULL;
	struct blob b = { 0 };
	uint64_t v = 0;

	ASSERT_EQ(store_file_open(d, &st), 0);
	ASSERT_EQ(put_str(st, "tenant-a", "u", "a", 0, &v), 0);
	/* Another tenant sees no record, and cannot overwrite or delete it. */
	ASSERT_ERR(st->ops->get(st, "tenant-b", "u", &b), -ENOENT);
	ASSERT_ERR(put_str(st, "tenant-b", "u", "b", 0, &v), -EEXIST);
	ASSERT_ERR(put_str(st, "tenant-b", "u", "b", 1, &v), -EEXIST);
	ASSERT_ERR(st->ops->del_if(st, "tenant-b", "u", 1), -ENOENT);
	ASSERT_EQ(st->ops->get(st, "tenant-a", "u", &b), 0);
	ASSERT_TRUE(blob_is(&b, "a"));
	blob_clear(&b);
	store_close(st);
}

TEST(test_modes)
{
	const char *d = fixture_subdir(root);
	struct store *st = NULL;
	struct stat sb;
	uint64_t v = 0;
	char dd[128];

	ASSERT_EQ(store_file_open(d, &st), 0);
	ASSERT_EQ(put_str(st, "t", "alice", "x", 0, &v), 0);
	ASSERT_EQ(lstat(fixture_path(d, "u-alice.rec"), &sb), 0);
	ASSERT_TRUE(S_ISREG(sb.st_mode));
	ASSERT_EQ(sb.st_mode & 07777, 0600);
	ASSERT_EQ(lstat(fixture_path(d, ".lock"), &sb), 0);
	ASSERT_EQ(sb.st_mode & 07777, 0600);
	store_close(st);
	st = NULL;

	snprintf(dd, sizeof(dd), "%s", d);
	ASSERT_EQ(chmod(dd, 0755), 0);
	ASSERT_ERR(store_file_open(dd, &st), -EPERM);
	ASSERT_EQ(chmod(dd, 0710), 0);
	ASSERT_ERR(store_file_open(dd, &st), -EPERM);
	ASSERT_EQ(chmod(dd, 0701), 0);
	ASSERT_ERR(store_file_open(dd, &st), -EPERM);
	ASSERT_TRUE(st == NULL);
	ASSERT_EQ(chmod(dd, 0700), 0);
	if (geteuid() == 0) {
		ASSERT_EQ(chown(dd, 12345, 12345), 0);
		ASSERT_ERR(store_file_open(dd, &st), -EPERM);
		ASSERT_EQ(chown(dd, 0, 0), 0);
	}
	ASSERT_ERR(store_file_open(fixture_path(dd, "u-alice.rec"), &st),
	    -ENOTDIR);
	ASSERT_ERR(store_file_open(fixture_path(dd, "nope"), &st), -ENOENT);
	ASSERT_EQ(store_file_open(dd, &st), 0);
	store_close(st);
}

TEST(test_symlink)
{
	const char *d = fixture_subdir(root);
	struct store *st = NULL;
	struct blob b = { 0 };
	struct store_entry *e = NULL;
	size_t n = 0;
	char *next = NULL;
	uint64_t v = 0;
	char target[128], buf[64], dd[128];
	struct stat sb;

	snprintf(dd, sizeof(dd), "%s", d);
	snprintf(target, sizeof(target), "%s/target", root);
	{
		FILE *f = fopen(target, "w");

		ASSERT_TRUE(f != NULL);
		fputs("precious", f);
		fclose(f);
	}
	ASSERT_EQ(symlink(target, fixture_path(dd, "u-mallory.rec")), 0);
	ASSERT_EQ(store_file_open(dd, &st), 0);
	ASSERT_ERR(st->ops->get(st, "t", "mallory", &b), -ELOOP);
	ASSERT_ERR(put_str(st, "t", "mallory", "x", 0, &v), -ELOOP);
	ASSERT_ERR(put_str(st, "t", "mallory", "x", 1, &v), -ELOOP);
	ASSERT_ERR(st->ops->del_if(st, "t", "mallory", 1), -ELOOP);
	ASSERT_ERR(st->ops->list(st, "t", NULL, 10, 0, &e, &n, &next), -ELOOP);
	ASSERT_EQ(read_file(target, buf, sizeof(buf)), 8);
	ASSERT_STREQ(buf, "precious");
	ASSERT_EQ(lstat(fixture_path(dd, "u-mallory.rec"), &sb), 0);
	ASSERT_TRUE(S_ISLNK(sb.st_mode)); /* not replaced either */
	/* A symlinked lock file is refused too. */
	ASSERT_EQ(unlink(fixture_path(dd, "u-mallory.rec")), 0);
	ASSERT_EQ(unlink(fixture_path(dd, ".lock")), 0);
	ASSERT_EQ(symlink(target, fixture_path(dd, ".lock")), 0);
	ASSERT_ERR(put_str(st, "t", "bob", "x", 0, &v), -ELOOP);
	ASSERT_EQ(read_file(target, buf, sizeof(buf)), 8);
	store_close(st);
	st = NULL;
	ASSERT_ERR(store_file_open(dd, &st), -ELOOP);
	/* A FIFO at a record path does not hang and is refused. */
	ASSERT_EQ(unlink(fixture_path(dd, ".lock")), 0);
	ASSERT_EQ(mkfifo(fixture_path(dd, "u-fifo.rec"), 0600), 0);
	ASSERT_EQ(store_file_open(dd, &st), 0);
	ASSERT_ERR(st->ops->get(st, "t", "fifo", &b), -EPERM);
	store_close(st);
}

TEST(test_crash_leftovers)
{
	const char *d = fixture_subdir(root);
	struct store *st = NULL;
	struct blob b = { 0 };
	uint64_t v = 0;
	char dd[128];
	struct stat sb;
	int fd;

	snprintf(dd, sizeof(dd), "%s", d);
	ASSERT_EQ(store_file_open(dd, &st), 0);
	ASSERT_EQ(put_str(st, "t", "alice", "old", 0, &v), 0);
	/*
	 * A writer that died after writing part of its temp file, and one that
	 * died right after creating it (named as ours would be, so the next
	 * write collides with it).
	 */
	fd = open(fixture_path(dd, ".tmp-99999-0"), O_WRONLY | O_CREAT | O_EXCL,
	    0600);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(write(fd, "CRF1\0\0", 6), 6);
	close(fd);
	{
		char name[64];

		snprintf(name, sizeof(name), ".tmp-%ld-1", (long)getpid());
		fd = open(fixture_path(dd, name), O_WRONLY | O_CREAT | O_EXCL,
		    0600);
		ASSERT_TRUE(fd >= 0);
		close(fd);
	}
	ASSERT_EQ(st->ops->get(st, "t", "alice", &b), 0);
	ASSERT_TRUE(blob_is(&b, "old"));
	ASSERT_EQ(b.version, 1);
	blob_clear(&b);
	/* The next write steps over the leftover with our name. */
	ASSERT_EQ(put_str(st, "t", "alice", "new", 1, &v), 0);
	ASSERT_EQ(st->ops->get(st, "t", "alice", &b), 0);
	ASSERT_TRUE(blob_is(&b, "new"));
	blob_clear(&b);
	store_close(st);
	st = NULL;
	/* Reopening removes the rest. */
	ASSERT_EQ(stat(fixture_path(dd, ".tmp-99999-0"), &sb), 0);
	ASSERT_EQ(store_file_open(dd, &st), 0);
	ASSERT_ERR(stat(fixture_path(dd, ".tmp-99999-0"), &sb), -1);
	ASSERT_EQ(st->ops->get(st, "t", "alice", &b), 0);
	ASSERT_TRUE(blob_is(&b, "new"));
	ASSERT_EQ(b.version, 2);
	blob_clear(&b);

	/* A record file damaged behind our back reads as -EBADMSG. */
	ASSERT_EQ(truncate(fixture_path(dd, "u-alice.rec"), 10), 0);
	ASSERT_ERR(st->ops->get(st, "t", "alice", &b), -EBADMSG);
	ASSERT_ERR(put_str(st, "t", "alice", "x", 2, &v), -EBADMSG);
	store_close(st);
}

TEST(test_list)
{
	static const char *const users[] = { "erin", "alice", "dave", "carol",
		"bob", "frank", "gina" };
	const char *d = fixture_subdir(root);
	struct store *st = NULL;
	struct store_entry *e = NULL;
	char *cursor = NULL, *next = NULL;
	char seen[256] = "";
	size_t n = 0, i, pages = 0;
	uint64_t v = 0;

	ASSERT_EQ(store_file_open(d, &st), 0);
	ASSERT_EQ(st->ops->list(st, "t", NULL, 10, 0, &e, &n, &next), 0);
	ASSERT_EQ(n, 0);
	ASSERT_TRUE(next == NULL);
	store_entries_free(e, n);
	for (i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		ASSERT_EQ(put_str(st, "t", users[i], users[i], 0, &v), 0);
	ASSERT_EQ(put_str(st, "t", "bob", "bob2", 1, &v), 0);
	ASSERT_EQ(put_str(st, "other", "carl", "x", 0, &v), 0); /* skipped */
	ASSERT_ERR(st->ops->list(st, "t", NULL, 0, 0, &e, &n, &next), -EINVAL);
	do {
		ASSERT_EQ(st->ops->list(st, "t", cursor, 2, 1, &e, &n, &next),
		    0);
		ASSERT_TRUE(n <= 2);
		for (i = 0; i < n; i++) {
			strncat(seen, e[i].user,
			    sizeof(seen) - strlen(seen) - 2);
			strncat(seen, " ", sizeof(seen) - strlen(seen) - 1);
			ASSERT_EQ(e[i].version, e[i].blob.version);
			if (strcmp(e[i].user, "bob") == 0) {
				ASSERT_EQ(e[i].version, 2);
				ASSERT_TRUE(blob_is(&e[i].blob, "bob2"));
			} else {
				ASSERT_EQ(e[i].version, 1);
				ASSERT_TRUE(blob_is(&e[i].blob, e[i].user));
			}
		}
		store_entries_free(e, n);
		free(cursor);
		cursor = next;
		pages++;
	} while (cursor != NULL && pages < 10);
	ASSERT_STREQ(seen, "alice bob carol dave erin frank gina ");
	ASSERT_EQ(pages, 4);
	/* Without blobs; cursor "" is the start; a cursor between names. */
	ASSERT_EQ(st->ops->list(st, "t", "", 3, 0, &e, &n, &next), 0);
	ASSERT_EQ(n, 3);
	ASSERT_TRUE(e[0].blob.data == NULL && e[0].version == 1);
	ASSERT_STREQ(next, "carol");
	store_entries_free(e, n);
	free(next);
	ASSERT_EQ(st->ops->list(st, "t", "cz", 100, 0, &e, &n, &next), 0);
	ASSERT_EQ(n, 4);
	ASSERT_STREQ(e[0].user, "dave");
	ASSERT_TRUE(next == NULL);
	store_entries_free(e, n);
	ASSERT_EQ(st->ops->list(st, "other", NULL, 100, 0, &e, &n, &next), 0);
	ASSERT_EQ(n, 1);
	ASSERT_STREQ(e[0].user, "carl");
	store_entries_free(e, n);
	store_close(st);
}

/* One child: 200 CAS increments of a decimal counter, retrying on -ESTALE. */
static int
increment_child(const char *dir, int open_before, struct store *inherited)
{
	struct store *st = inherited;
	struct blob b = { 0 };
	char num[32];
	uint64_t v = 0;
	int i, r, count;

	if (!open_before && store_file_open(dir, &st) < 0)
		return 10;
	for (i = 0; i < 200; i++) {
		for (;;) {
			r = st->ops->get(st, "t", "ctr", &b);
			if (r < 0)
				return 11;
			if (b.len >= sizeof(num))
				return 12;
			memcpy(num, b.data, b.len);
			num[b.len] = '\0';
			count = atoi(num);
			snprintf(num, sizeof(num), "%d", count + 1);
			r = st->ops->put_if(st, "t", "ctr",
			    (const uint8_t *)num, strlen(num), b.version, &v);
			blob_clear(&b);
			if (r == 0)
				break;
			if (r != -ESTALE)
				return 13;
		}
	}
	store_close(st);
	return 0;
}

static void
run_concurrency(int open_before)
{
	const char *d = fixture_subdir(root);
	struct store *st = NULL;
	struct blob b = { 0 };
	uint64_t v = 0;
	pid_t pid[2];
	char dd[128];
	int i, status;

	snprintf(dd, sizeof(dd), "%s", d);
	ASSERT_EQ(store_file_open(dd, &st), 0);
	ASSERT_EQ(put_str(st, "t", "ctr", "0", 0, &v), 0);
	for (i = 0; i < 2; i++) {
		pid[i] = fixture_fork();
		ASSERT_TRUE(pid[i] >= 0);
		if (pid[i] == 0)
			_exit(increment_child(dd, open_before, st));
	}
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(fixture_wait(pid[i], &status), pid[i]);
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(WEXITSTATUS(status), 0);
	}
	ASSERT_EQ(st->ops->get(st, "t", "ctr", &b), 0);
	ASSERT_EQ(b.version, 401);
	ASSERT_TRUE(blob_is(&b, "400"));
	blob_clear(&b);
	store_close(st);
}

TEST(test_two_processes)
{
	run_concurrency(0);
}

/* The same with a store opened before fork: the lock must still exclude. */
TEST(test_two_processes_shared_open)
{
	run_concurrency(1);
}

int
main(void)
{
	umask(022);
	root = fixture_tmpdir("store_file");
	if (root == NULL)
		return 1;
	RUN(test_roundtrip);
	RUN(test_cas);
	RUN(test_tenants);
	RUN(test_modes);
	RUN(test_symlink);
	RUN(test_crash_leftovers);
	RUN(test_list);
	RUN(test_two_processes);
	RUN(test_two_processes_shared_open);
	TEST_MAIN_END();
}
