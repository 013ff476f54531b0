/*
 * test_audit.c - the audit log: JSON-lines records with their fields,
 * escaping of hostile user strings in both forms, reopen, and the token
 * fingerprint, and coalesced refusals (a bounded number of records whose
 * counts add up to the true number). syslog() output goes wherever
 * /dev/log leads (or nowhere).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "entra/secret.h"

#include "audit.h"
#include "test.h"

static const char *dir;
static char path[PATH_MAX];

/* Read the file's lines (at most max) into lines[], as parsed JSON. */
static int
read_records(const char *p, json_t **recs, int max)
{
	char line[8192];
	FILE *f;
	int n = 0;

	f = fopen(p, "re");
	if (f == NULL)
		return -errno;
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		json_error_t jerr;

		if (strchr(line, '\n') == NULL) {
			n = -EBADMSG; /* every record ends its line */
			break;
		}
		recs[n] = json_loads(line, 0, &jerr);
		if (recs[n] == NULL) {
			n = -EBADMSG;
			break;
		}
		n++;
	}
	(void)fclose(f);
	return n;
}

static const char *
jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

TEST(test_json_file)
{
	struct audit_event ev = {
		.event = "token_issued",
		.uid = 1000,
		.user = "alice",
		.op = "token",
		.scope = "https://storage.azure.com/.default",
		.outcome = "ok",
		.fp = "ba7816bf",
	};
	struct audit_event ev2 = {
		.event = "refresh_failed",
		.uid = (uid_t)-1,
		.user = "bob",
		.outcome = "error",
		.cls = "retry",
		.reason = "HTTP 503",
		.trace_id = "t-1",
		.correlation_id = "c-1",
		.oid = "oid-1",
	};
	json_t *recs[4] = { 0 };
	struct stat st;
	int n, i;

	(void)snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	ASSERT_EQ(audit_init("node-1", path), 0);
	ASSERT_EQ(stat(path, &st), 0);
	ASSERT_EQ(st.st_mode & 0777, 0600);
	audit_log(&ev);
	audit_log(&ev2);
	n = read_records(path, recs, 4);
	ASSERT_EQ(n, 2);

	ASSERT_STREQ(jstr(recs[0], "event"), "token_issued");
	ASSERT_STREQ(jstr(recs[0], "node"), "node-1");
	ASSERT_EQ(json_integer_value(json_object_get(recs[0], "uid")), 1000);
	ASSERT_STREQ(jstr(recs[0], "user"), "alice");
	ASSERT_STREQ(jstr(recs[0], "op"), "token");
	ASSERT_STREQ(jstr(recs[0], "scope"),
	    "https://storage.azure.com/.default");
	ASSERT_STREQ(jstr(recs[0], "outcome"), "ok");
	ASSERT_STREQ(jstr(recs[0], "fp"), "ba7816bf");
	/* ISO-8601 UTC and unix seconds. */
	ASSERT_TRUE(jstr(recs[0], "time") != NULL);
	ASSERT_EQ(strlen(jstr(recs[0], "time")), 20);
	ASSERT_EQ(jstr(recs[0], "time")[19], 'Z');
	ASSERT_TRUE(
	    json_integer_value(json_object_get(recs[0], "ts")) > 1600000000);
	/* Absent fields are omitted. */
	ASSERT_TRUE(json_object_get(recs[0], "class") == NULL);
	ASSERT_TRUE(json_object_get(recs[0], "reason") == NULL);

	ASSERT_TRUE(json_object_get(recs[1], "uid") == NULL);
	ASSERT_STREQ(jstr(recs[1], "class"), "retry");
	ASSERT_STREQ(jstr(recs[1], "reason"), "HTTP 503");
	ASSERT_STREQ(jstr(recs[1], "trace_id"), "t-1");
	ASSERT_STREQ(jstr(recs[1], "correlation_id"), "c-1");
	ASSERT_STREQ(jstr(recs[1], "oid"), "oid-1");
	ASSERT_TRUE(json_object_get(recs[1], "op") == NULL);
	for (i = 0; i < n; i++)
		json_decref(recs[i]);
}

TEST(test_reopen)
{
	char rotated[PATH_MAX + 8];
	struct audit_event ev = { .event = "logout", .uid = 7, .user = "u" };
	json_t *recs[2] = { 0 };

	(void)snprintf(rotated, sizeof(rotated), "%s.1", path);
	ASSERT_EQ(rename(path, rotated), 0);
	ASSERT_EQ(audit_reopen(), 0);
	audit_log(&ev);
	ASSERT_EQ(read_records(path, recs, 2), 1);
	ASSERT_STREQ(jstr(recs[0], "event"), "logout");
	json_decref(recs[0]);
	ASSERT_EQ(unlink(rotated), 0);
}

TEST(test_escaping)
{
	struct audit_event ev = {
		.event = "token_refused",
		.uid = 1001,
		.user = "ev\"il\nuser=\"root\\",
		.reason = "bad\r\nevent=token_issued uid=0",
		.outcome = "refused",
	};
	char buf[4096], big[1000];
	json_t *recs[4] = { 0 };
	int n;

	ASSERT_EQ(unlink(path), 0);
	ASSERT_EQ(audit_reopen(), 0);
	n = audit_format_kv(&ev, buf, sizeof(buf));
	ASSERT_TRUE(n > 0);
	ASSERT_EQ((size_t)n, strlen(buf));
	ASSERT_STREQ(buf,
	    "event=token_refused node=\"node-1\" uid=1001 "
	    "user=\"ev\\\"il?user=\\\"root\\\\\" outcome=\"refused\" "
	    "reason=\"bad??event=token_issued uid=0\"");
	ASSERT_TRUE(strchr(buf, '\n') == NULL);

	audit_log(&ev);
	ASSERT_EQ(read_records(path, recs, 4), 1);
	ASSERT_STREQ(jstr(recs[0], "user"), "ev\"il?user=\"root\\");
	ASSERT_STREQ(jstr(recs[0], "reason"), "bad??event=token_issued uid=0");
	json_decref(recs[0]);

	/* Caps: a long user is cut and marked. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ev.user = big;
	ev.reason = NULL;
	n = audit_format_kv(&ev, buf, sizeof(buf));
	ASSERT_TRUE(n > 0 && n < 200);
	ASSERT_TRUE(strstr(buf, "aaa...\"") != NULL);

	/* Too small a buffer is an error, never a cut record. */
	ASSERT_ERR(audit_format_kv(&ev, buf, 20), -EMSGSIZE);
	ASSERT_STREQ(buf, "");

	/* A hostile event name cannot add fields. */
	ev.event = "x uid=0";
	ASSERT_TRUE(audit_format_kv(&ev, buf, sizeof(buf)) > 0);
	ASSERT_TRUE(strncmp(buf, "event=x?uid?0 ", 14) == 0);
}

TEST(test_fingerprint)
{
	struct secret *s;
	char fp[9];

	s = secret_from_str("abc");
	ASSERT_TRUE(s != NULL);
	audit_fingerprint(s, fp);
	secret_free(s);
	ASSERT_STREQ(fp, "ba7816bf"); /* printf %s abc | sha256sum */

	s = secret_new("", 0);
	ASSERT_TRUE(s != NULL);
	audit_fingerprint(s, fp);
	secret_free(s);
	ASSERT_STREQ(fp, "e3b0c442");

	audit_fingerprint(NULL, fp);
	ASSERT_STREQ(fp, "");
}

TEST(test_symlink_refused)
{
	char link[PATH_MAX + 8];

	audit_close();
	(void)snprintf(link, sizeof(link), "%s/link.jsonl", dir);
	ASSERT_EQ(symlink(path, link), 0);
	ASSERT_ERR(audit_init("n", link), -ELOOP);
	ASSERT_EQ(unlink(link), 0);
	ASSERT_EQ(audit_init("n", NULL), 0);
	ASSERT_EQ(audit_reopen(), 0);
	audit_close();
}

/* Sum of "count" over the records of one (uid, reason). */
static long long
count_sum(json_t **recs, int n, long long uid, const char *reason, int *nrec)
{
	long long sum = 0;
	int i;

	*nrec = 0;
	for (i = 0; i < n; i++) {
		if (json_integer_value(json_object_get(recs[i], "uid")) !=
			uid ||
		    strcmp(jstr(recs[i], "reason"), reason) != 0)
			continue;
		(*nrec)++;
		sum += json_integer_value(json_object_get(recs[i], "count"));
	}
	return sum;
}

TEST(test_refusals_coalesced)
{
	struct audit_event ev = {
		.event = "request_refused",
		.uid = 1001,
		.user = "mallory",
		.op = "admin_list",
		.outcome = "refused",
		.reason = "not root or admin_group",
	};
	json_t *recs[64];
	char p[PATH_MAX + 16];
	int64_t now = 5000, next;
	int i, n, nrec;

	(void)snprintf(p, sizeof(p), "%s/coalesce.jsonl", dir);
	ASSERT_EQ(audit_init("node1", p), 0);
	/* 20 000 refusals within one window: one record now... */
	for (i = 0; i < 20000; i++)
		audit_refusal(&ev, now + i / 10);
	ev.uid = 1002; /* ...another uid is its own key... */
	audit_refusal(&ev, now);
	ev.uid = 1001;
	ev.reason = "other reason"; /* ...and so is another reason */
	audit_refusal(&ev, now);
	audit_refusal(&ev, now + 1);
	ev.reason = "not root or admin_group";
	ASSERT_EQ(audit_refusal_pending(), 3);
	n = read_records(p, recs, 64);
	ASSERT_EQ(n, 3);
	for (i = 0; i < n; i++)
		json_decref(recs[i]);
	/* Nothing is due before the window ends. */
	next = audit_refusal_flush(now + 100, 0);
	ASSERT_EQ(next, now + AUDIT_COALESCE_MS);
	ASSERT_EQ(read_records(p, recs, 64), 3);
	for (i = 0; i < 3; i++)
		json_decref(recs[i]);
	ASSERT_EQ(audit_refusal_flush(now + AUDIT_COALESCE_MS, 0), -1);
	ASSERT_EQ(audit_refusal_pending(), 0);
	/* A new window starts with a record of its own. */
	audit_refusal(&ev, now + AUDIT_COALESCE_MS + 1);
	audit_close(); /* flushes what is pending (nothing repeated here) */
	n = read_records(p, recs, 64);
	ASSERT_TRUE(n > 0);
	/* Bounded records, true counts: 20 000 + 1 in 3 records. */
	ASSERT_EQ(count_sum(recs, n, 1001, "not root or admin_group", &nrec),
	    20001);
	ASSERT_EQ(nrec, 3);
	ASSERT_EQ(count_sum(recs, n, 1002, "not root or admin_group", &nrec),
	    1);
	ASSERT_EQ(count_sum(recs, n, 1001, "other reason", &nrec), 2);
	ASSERT_EQ(nrec, 2);
	ASSERT_EQ(n, 6);
	for (i = 0; i < n; i++)
		json_decref(recs[i]);
	(void)unlink(p);
}

TEST(test_refusals_flushed_at_close)
{
	struct audit_event ev = {
		.event = "request_refused",
		.uid = 7,
		.op = "stats",
		.outcome = "refused",
		.reason = "r",
	};
	json_t *recs[8];
	char p[PATH_MAX + 16];
	int i, n, nrec;

	(void)snprintf(p, sizeof(p), "%s/close.jsonl", dir);
	ASSERT_EQ(audit_init("n", p), 0);
	for (i = 0; i < 50; i++)
		audit_refusal(&ev, 100);
	audit_close();
	n = read_records(p, recs, 8);
	ASSERT_EQ(n, 2);
	ASSERT_EQ(count_sum(recs, n, 7, "r", &nrec), 50);
	for (i = 0; i < n; i++)
		json_decref(recs[i]);
	ASSERT_EQ(audit_refusal_pending(), 0);
	(void)unlink(p);
}

int
main(void)
{
	dir = fixture_tmpdir("audit");
	if (dir == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_json_file);
	RUN(test_reopen);
	RUN(test_escaping);
	RUN(test_fingerprint);
	RUN(test_symlink_refused);
	RUN(test_refusals_coalesced);
	RUN(test_refusals_flushed_at_close);
	TEST_MAIN_END();
}
