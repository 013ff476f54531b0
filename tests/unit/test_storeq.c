/*
 * test_storeq.c - the store thread: jobs run in order off the loop, their
 * callbacks run on the loop, a lost CAS race for the same account is
 * merged, another account's record wins, and shutdown drains everything.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "entra/secret.h"
#include "event.h"
#include "record.h"
#include "seal.h"
#include "store.h"
#include "storeq.h"
#include "test.h"

#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"

static struct event_loop *ev;
static struct store *st;
static struct seal *sl;
static struct storeq *q;
static int order[16];
static int norder;
static int last_result;
static struct record *last_rec;

static void
done_cb(struct storeq_job *j)
{
	order[norder++] = (int)(intptr_t)j->arg;
	last_result = j->result;
	if (j->rec != NULL && j->op != STOREQ_SAVE) {
		record_free(last_rec);
		last_rec = j->rec;
		j->rec = NULL;
	}
	if (norder == 3 || j->op == STOREQ_LOAD || j->op == STOREQ_LIST)
		event_stop(ev);
}

static struct record *
rec_for(const char *user, const char *oid, const char *rt)
{
	struct record *r = record_new(user, 1001);

	r->oid = strdup(oid);
	r->tid = strdup(TENANT);
	r->refresh_token = secret_from_str(rt);
	return r;
}

static struct record *
rec(const char *oid, const char *rt)
{
	return rec_for("alice", oid, rt);
}

static void
setup(void)
{
	char dir[] = "/tmp/test-storeq-XXXXXX";
	const char *ring = "key 1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= active\n";

	if (sodium_init() < 0)
		abort();
	if (mkdtemp(dir) == NULL || chmod(dir, 0700) < 0)
		abort();
	ev = event_new();
	if (store_file_open(dir, &st) < 0 || seal_load_buf(ring, strlen(ring), &sl) < 0 ||
	    storeq_new(ev, st, sl, TENANT, &q) < 0)
		abort();
}

TEST(saves_run_in_order_then_load_sees_the_last)
{
	struct storeq_job *j;
	int i;

	norder = 0;
	for (i = 1; i <= 3; i++) {
		char rt[32];

		snprintf(rt, sizeof(rt), "rt-%d", i);
		j = storeq_job_new(STOREQ_SAVE, "alice", done_cb, (void *)(intptr_t)i);
		j->rec = rec("oid-a", rt);	/* every copy claims version 0 */
		storeq_submit(q, j);
	}
	event_run(ev);
	ASSERT_EQ(norder, 3);
	ASSERT_EQ(order[0], 1);
	ASSERT_EQ(order[2], 3);
	ASSERT_EQ(last_result, 0);
	j = storeq_job_new(STOREQ_LOAD, "alice", done_cb, (void *)(intptr_t)4);
	storeq_submit(q, j);
	event_run(ev);
	ASSERT_TRUE(last_rec != NULL);
	ASSERT_STREQ(last_rec->refresh_token->ptr, "rt-3");
	ASSERT_EQ(last_rec->version, 3);
}

static int replaced;

static void
replaced_cb(struct storeq_job *j)
{
	replaced = j->replaced;
	last_result = j->result;
	event_stop(ev);
}

TEST(another_accounts_record_wins)
{
	struct storeq_job *j = storeq_job_new(STOREQ_SAVE, "alice", replaced_cb, NULL);

	j->rec = rec("oid-other", "rt-x");	/* stale version 0, other oid */
	storeq_submit(q, j);
	event_run(ev);
	ASSERT_EQ(last_result, 0);
	ASSERT_EQ(replaced, 1);
}

TEST(delete_then_load_is_enoent)
{
	struct storeq_job *j = storeq_job_new(STOREQ_DELETE, "alice", done_cb, NULL);

	norder = 2;	/* stop after this one */
	storeq_submit(q, j);
	event_run(ev);
	ASSERT_EQ(last_result, 0);
	j = storeq_job_new(STOREQ_LOAD, "alice", done_cb, NULL);
	storeq_submit(q, j);
	event_run(ev);
	ASSERT_EQ(last_result, -ENOENT);
}

static void
result_cb(struct storeq_job *j)
{
	last_result = j->result;
	event_stop(ev);
}

TEST(save_after_delete_does_not_resurrect)
{
	struct storeq_job *j = storeq_job_new(STOREQ_SAVE, "carol", result_cb, NULL);

	j->rec = rec_for("carol", "oid-c", "rt-1");
	storeq_submit(q, j);
	event_run(ev);
	ASSERT_EQ(last_result, 0);
	j = storeq_job_new(STOREQ_DELETE, "carol", result_cb, NULL);
	storeq_submit(q, j);
	event_run(ev);
	ASSERT_EQ(last_result, 0);
	/* A rotation written after an admin revoke must not bring it back. */
	j = storeq_job_new(STOREQ_SAVE, "carol", result_cb, NULL);
	j->rec = rec_for("carol", "oid-c", "rt-2");
	j->rec->version = 1;
	storeq_submit(q, j);
	event_run(ev);
	ASSERT_EQ(last_result, -ENOENT);
	/* A new consent may. */
	j = storeq_job_new(STOREQ_SAVE, "carol", result_cb, NULL);
	j->rec = rec_for("carol", "oid-c", "rt-3");
	j->rec->version = 1;
	j->may_create = 1;
	storeq_submit(q, j);
	event_run(ev);
	ASSERT_EQ(last_result, 0);
}

static int drained;

static void
drain_cb(struct storeq_job *j)
{
	(void)j;
	drained++;
}

TEST(free_drains_pending_jobs)
{
	int i;

	for (i = 0; i < 20; i++) {
		struct storeq_job *j = storeq_job_new(STOREQ_LOAD, "bob", drain_cb, NULL);

		storeq_submit(q, j);
	}
	storeq_free(q);	/* every callback runs before it returns */
	q = NULL;
	ASSERT_EQ(drained, 20);
}

int
main(void)
{
	setup();
	RUN(saves_run_in_order_then_load_sees_the_last);
	RUN(another_accounts_record_wins);
	RUN(delete_then_load_is_enoent);
	RUN(save_after_delete_does_not_resurrect);
	RUN(free_drains_pending_jobs);
	record_free(last_rec);
	store_close(st);
	seal_free(sl);
	event_free(ev);
	TEST_MAIN_END();
}
