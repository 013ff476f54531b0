/*
 * test_storeq.c - the store thread: jobs run in order off the loop, their
 * callbacks run on the loop, a lost CAS race for the same account is
 * merged, another account's record wins, and shutdown drains everything;
 * with high-water marks, a rolled-back row is refused by LOAD, LOCK and
 * LIST and written over by SAVE, and a DELETE keeps it from returning;
 * a code flow's claim (another node's pending flow wins, this node's own
 * gives way) and its take (a link or a state used up once, prefixes and
 * the other key refused, an expired flow never taken).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "entra/secret.h"
#include "event.h"
#include "marks.h"
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
	const char *ring =
	    "key 1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= active\n";
	const char *dir;

	if (sodium_init() < 0)
		abort();
	dir = fixture_tmpdir("storeq"); /* removed at TEST_MAIN_END */
	if (dir == NULL)
		abort();
	ev = event_new();
	sl = fixture_ring_text(ring);
	if (store_file_open(dir, &st) < 0 || sl == NULL ||
	    storeq_new(ev, st, sl, NULL, TENANT, &q) < 0)
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
		j = storeq_job_new(STOREQ_SAVE, "alice", done_cb,
		    (void *)(intptr_t)i);
		j->rec = rec("oid-a", rt); /* every copy claims version 0 */
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
	struct storeq_job *j =
	    storeq_job_new(STOREQ_SAVE, "alice", replaced_cb, NULL);

	j->rec = rec("oid-other", "rt-x"); /* stale version 0, other oid */
	storeq_submit(q, j);
	event_run(ev);
	ASSERT_EQ(last_result, 0);
	ASSERT_EQ(replaced, 1);
}

TEST(delete_then_load_is_enoent)
{
	struct storeq_job *j =
	    storeq_job_new(STOREQ_DELETE, "alice", done_cb, NULL);

	norder = 2; /* stop after this one */
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
	struct storeq_job *j =
	    storeq_job_new(STOREQ_SAVE, "carol", result_cb, NULL);

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
		struct storeq_job *j =
		    storeq_job_new(STOREQ_LOAD, "bob", drain_cb, NULL);

		storeq_submit(q, j);
	}
	storeq_free(q); /* every callback runs before it returns */
	q = NULL;
	ASSERT_EQ(drained, 20);
}

/* ---- with high-water marks ---- */

static struct storeq_job *kept;

static void
keep_cb(struct storeq_job *j)
{
	/* Keep the job's outcome: copy what the test looks at. */
	kept = calloc(1, sizeof(*kept));
	*kept = *j;
	kept->rec = j->rec;
	j->rec = NULL;
	kept->items = j->items;
	kept->nitems = j->nitems;
	j->items = NULL;
	j->nitems = 0;
	kept->user = kept->cursor = kept->next = NULL;
	kept->flow = NULL;
	event_stop(ev);
}

static struct storeq_job *
run_job(struct storeq *mq, enum storeq_op op, const char *user,
    struct record *rec, int may_create)
{
	struct storeq_job *j = storeq_job_new(op, user, keep_cb, NULL);

	storeq_job_free(kept);
	kept = NULL;
	j->rec = rec;
	j->may_create = may_create;
	if (op == STOREQ_LIST)
		j->limit = 10;
	storeq_submit(mq, j);
	event_run(ev);
	return kept;
}

/* The store writer: put old back under whatever version is there. */
static int
restore(struct store *s2, const char *user, const struct blob *old)
{
	struct blob cur = { 0 };
	uint64_t nv = 0;
	int r = s2->ops->get(s2, TENANT, user, &cur);

	r = s2->ops->put_if(s2, TENANT, user, old->data, old->len,
	    r == 0 ? cur.version : 0, &nv);
	blob_clear(&cur);
	return r;
}

TEST(marks_refuse_and_repair_rollbacks)
{
	const char *sdir = fixture_tmpdir("storeq-s"),
		   *mdir = fixture_tmpdir("storeq-m");
	struct store *s2 = NULL;
	struct marks *mk = NULL;
	struct storeq *mq = NULL;
	struct storeq_job *j;
	struct blob old = { 0 };
	struct marks_mark m;
	struct record *mine;

	ASSERT_TRUE(sdir != NULL && mdir != NULL);
	ASSERT_EQ(store_file_open(sdir, &s2), 0);
	ASSERT_EQ(marks_open(mdir, &mk, NULL, 0), 0);
	ASSERT_EQ(storeq_new(ev, s2, sl, mk, TENANT, &mq), 0);
	/* Consent, a backup of it, then two rotations. */
	j = run_job(mq, STOREQ_SAVE, "alice", rec("oid-a", "rt-1"), 1);
	ASSERT_EQ(j->result, 0);
	ASSERT_EQ(s2->ops->get(s2, TENANT, "alice", &old), 0);
	mine = record_dup(j->rec);
	secret_free(mine->refresh_token);
	mine->refresh_token = secret_from_str("rt-3");
	j = run_job(mq, STOREQ_SAVE, "alice", record_dup(mine), 0);
	ASSERT_EQ(j->result, 0);
	mine->version = j->rec->version;
	mine->gen = j->rec->gen;
	j = run_job(mq, STOREQ_SAVE, "alice", record_dup(mine), 0);
	ASSERT_EQ(j->result, 0);
	ASSERT_EQ(j->rec->gen, 3);
	ASSERT_EQ(j->rollback, 0);
	mine->version = j->rec->version;
	mine->gen = j->rec->gen;

	/* The writer puts the consent's blob back: LOAD and LOCK refuse it. */
	ASSERT_EQ(restore(s2, "alice", &old), 0);
	j = run_job(mq, STOREQ_LOAD, "alice", NULL, 0);
	ASSERT_ERR(j->result, RECORD_EROLLBACK);
	ASSERT_TRUE(j->rec == NULL);
	ASSERT_EQ(j->rollback, 1);
	ASSERT_EQ(j->rb.gen, 1);
	ASSERT_EQ(j->rb.mark.gen, 3);
	j = run_job(mq, STOREQ_LOCK, "alice", NULL, 0);
	ASSERT_ERR(j->result, RECORD_EROLLBACK);
	ASSERT_EQ(j->locked, 1); /* the (file: always) lock is held */
	/* LIST shows it, and does not move the mark. */
	j = run_job(mq, STOREQ_LIST, NULL, NULL, 0);
	ASSERT_EQ(j->result, 0);
	ASSERT_EQ(j->nitems, 1);
	ASSERT_EQ(j->items[0].rolled_back, 1);
	/* This node's newer record is written over the old row. */
	j = run_job(mq, STOREQ_SAVE, "alice", record_dup(mine), 0);
	ASSERT_EQ(j->result, 0);
	ASSERT_EQ(j->rollback, 2);
	ASSERT_EQ(j->rec->gen, 4);
	j = run_job(mq, STOREQ_LOAD, "alice", NULL, 0);
	ASSERT_EQ(j->result, 0);
	ASSERT_STREQ(j->rec->refresh_token->ptr, "rt-3");
	ASSERT_EQ(j->rollback, 0);

	/* Revoked: the mark is a deletion; the old row does not come back,
	 * a late rotation does not write it, a new consent does. */
	j = run_job(mq, STOREQ_DELETE, "alice", NULL, 0);
	ASSERT_EQ(j->result, 0);
	ASSERT_EQ(marks_get(mk, TENANT, "alice", &m), 0);
	ASSERT_EQ(m.deleted, 1);
	ASSERT_EQ(restore(s2, "alice", &old), 0);
	j = run_job(mq, STOREQ_LOAD, "alice", NULL, 0);
	ASSERT_ERR(j->result, RECORD_EROLLBACK);
	ASSERT_EQ(j->rb.mark.deleted, 1);
	mine->gen = 4;
	j = run_job(mq, STOREQ_SAVE, "alice", record_dup(mine), 0);
	ASSERT_ERR(j->result, -ENOENT);
	j = run_job(mq, STOREQ_SAVE, "alice", rec("oid-a", "rt-new"), 1);
	ASSERT_EQ(j->result, 0);
	ASSERT_TRUE(j->rec->epoch > mine->epoch);
	j = run_job(mq, STOREQ_LOAD, "alice", NULL, 0);
	ASSERT_EQ(j->result, 0);
	ASSERT_STREQ(j->rec->refresh_token->ptr, "rt-new");

	storeq_job_free(kept);
	kept = NULL;
	storeq_free(mq);
	record_free(mine);
	blob_clear(&old);
	marks_close(mk);
	store_close(s2);
	(void)fixture_rmtree(sdir);
	(void)fixture_rmtree(mdir);
}

/* ---- code flows (issue 13): claim and take through the record ---- */

static struct storeq_job *taken; /* the finished job, kept */

static void
cflow_kept_cb(struct storeq_job *j)
{
	struct storeq_job *k = calloc(1, sizeof(*k));

	/* The job is freed after this: keep what the test reads. */
	k->result = j->result;
	k->claimed = j->claimed;
	k->cflow = j->cflow;
	k->rec = j->rec;
	j->cflow = NULL;
	j->rec = NULL;
	storeq_job_free(taken);
	taken = k;
	event_stop(ev);
}

static struct record_cflow *
cflow(const char *node, int64_t expires_on)
{
	struct record_cflow *f = calloc(1, sizeof(*f));

	f->verifier = secret_from_str("verifier-of-the-flow");
	f->state = strdup("STATE-0123456789");
	f->link = strdup("LINK-0123456789");
	f->redirect_uri = strdup("https://p.test/entra/callback");
	f->authorize_url = strdup("https://login.test/authorize?x");
	f->signin_url = strdup("https://p.test/entra/login/LINK-0123456789");
	f->scope = strdup("https://storage.azure.com/.default");
	f->node = strdup(node);
	f->client = 1;
	f->expires_on = expires_on;
	return f;
}

static int
run_claim(const char *user, const char *node, int64_t expires_on)
{
	struct storeq_job *j =
	    storeq_job_new(STOREQ_FLOW_CLAIM, user, cflow_kept_cb, NULL);

	j->uid = 1001;
	j->cflow = cflow(node, expires_on);
	j->node = strdup(node);
	storeq_submit(q, j);
	event_run(ev);
	return taken->result;
}

static int
run_take(const char *user, const char *key, int is_link)
{
	struct storeq_job *j =
	    storeq_job_new(STOREQ_FLOW_TAKE, user, cflow_kept_cb, NULL);

	j->key = strdup(key);
	j->take_link = is_link;
	storeq_submit(q, j);
	event_run(ev);
	return taken->result;
}

TEST(code_flow_claim_and_take_once)
{
	int64_t later = time(NULL) + 900;

	ASSERT_EQ(run_claim("dora", "n1", later), 0);
	ASSERT_EQ(taken->claimed, 1);
	/* Another node's start joins the pending flow. */
	ASSERT_EQ(run_claim("dora", "n2", later), 0);
	ASSERT_EQ(taken->claimed, 0);
	ASSERT_STREQ(taken->rec->cflow->node, "n1");
	/* The same node's new start replaces its own. */
	ASSERT_EQ(run_claim("dora", "n1", later), 0);
	ASSERT_EQ(taken->claimed, 1);
	ASSERT_ERR(run_take("dora", "LINK-wrong-45678", 1), -ENOENT);
	ASSERT_ERR(run_take("dora", "LINK-012345678", 1), -ENOENT); /* prefix */
	ASSERT_ERR(run_take("dora", "STATE-0123456789", 1), -ENOENT);
	ASSERT_EQ(run_take("dora", "LINK-0123456789", 1), 0);
	ASSERT_STREQ(taken->cflow->authorize_url,
	    "https://login.test/authorize?x");
	ASSERT_STREQ(taken->rec->cflow->link, "");
	ASSERT_STREQ(taken->rec->cflow->state, "STATE-0123456789");
	ASSERT_ERR(run_take("dora", "LINK-0123456789", 1), -ENOENT); /* once */
	ASSERT_EQ(run_take("dora", "STATE-0123456789", 0), 0);
	ASSERT_STREQ(taken->cflow->verifier->ptr, "verifier-of-the-flow");
	ASSERT_STREQ(taken->rec->cflow->state, "");
	ASSERT_ERR(run_take("dora", "STATE-0123456789", 0), -ENOENT);
	ASSERT_ERR(run_take("dora", "", 0), -ENOENT);
	ASSERT_ERR(run_take("nobody", "STATE-0123456789", 0), -ENOENT);
}

TEST(code_flow_expired_is_not_taken)
{
	ASSERT_EQ(run_claim("erin", "n1", time(NULL) - 1), 0);
	ASSERT_EQ(taken->claimed, 1);
	ASSERT_ERR(run_take("erin", "STATE-0123456789", 0), -ENOENT);
	/* An expired flow of another node does not block a new claim. */
	ASSERT_EQ(run_claim("erin", "n2", time(NULL) + 900), 0);
	ASSERT_EQ(taken->claimed, 1);
	storeq_job_free(taken);
	taken = NULL;
}

int
main(void)
{
	setup();
	RUN(saves_run_in_order_then_load_sees_the_last);
	RUN(another_accounts_record_wins);
	RUN(delete_then_load_is_enoent);
	RUN(save_after_delete_does_not_resurrect);
	RUN(marks_refuse_and_repair_rollbacks);
	RUN(code_flow_claim_and_take_once);
	RUN(code_flow_expired_is_not_taken);
	RUN(free_drains_pending_jobs);
	record_free(last_rec);
	store_close(st);
	seal_free(sl);
	event_free(ev);
	TEST_MAIN_END();
}
