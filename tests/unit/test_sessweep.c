/*
 * test_sessweep.c - the session checks (credd/sessweep.c): the lookups
 * run on the check thread, never the loop; their answers end sessions
 * on the loop (a uid with no live process after the grace, a user that
 * no longer names its uid, idle ones) and unknown answers end nothing;
 * a check in flight is not started twice, and a hanging one does not
 * stop idle sessions from ending; and the /proc scan itself on
 * this machine's /proc (our own uid is alive, an unused one is not, a
 * directory without pid 1 is refused rather than read as "nobody").
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "event.h"
#include "session.h"
#include "sessweep.h"
#include "test.h"

#define UNUSED_UID ((uid_t)3999999999u)

static struct {
	pthread_t loop_thread;
	int off_loop; /* every lookup ran off the loop thread */
	int scans, accounts;
	int scan_result;       /* what the fake scan returns */
	uid_t dead_uid;	       /* the fake scan's uid with no process */
	const char *gone_user; /* the fake directory's deleted account */
	int64_t now;
	int is_blocked; /* the fake directory hangs until released */
} fake;

static pthread_mutex_t block_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t block_cv = PTHREAD_COND_INITIALIZER;

static int
fake_scan(void *arg, const uid_t *uids, size_t n, unsigned char *alive)
{
	size_t i;

	(void)arg;
	fake.scans++;
	if (pthread_equal(pthread_self(), fake.loop_thread))
		fake.off_loop = 0;
	for (i = 0; i < n; i++)
		alive[i] = uids[i] != fake.dead_uid;
	return fake.scan_result;
}

static int
fake_account(void *arg, const char *user, uid_t uid)
{
	(void)arg;
	(void)uid;
	fake.accounts++;
	if (pthread_equal(pthread_self(), fake.loop_thread))
		fake.off_loop = 0;
	pthread_mutex_lock(&block_mu);
	while (fake.is_blocked)
		pthread_cond_wait(&block_cv, &block_mu);
	pthread_mutex_unlock(&block_mu);
	return fake.gone_user == NULL || strcmp(user, fake.gone_user) != 0;
}

static int64_t
fake_now(void *arg)
{
	(void)arg;
	return fake.now;
}

static const struct sessweep_ops fake_ops = {
	.scan = fake_scan,
	.account = fake_account,
	.now = fake_now,
};

static void
watch_cb(struct event_loop *ev, void *arg)
{
	struct sessweep *sw = arg;
	static int64_t deadline;

	if (deadline == 0)
		deadline = event_now_ms(ev) + 10000;
	if (sessweep_checks(sw) > 0 || event_now_ms(ev) > deadline) {
		deadline = 0;
		event_stop(ev);
		return;
	}
	(void)event_timer_in(ev, 5, watch_cb, sw);
}

/* Run one check to its end on the loop (at most ~10 s). */
static uint64_t
run_check(struct event_loop *ev, struct sessweep **sw, struct sessions *ss,
    const struct sessweep_cfg *cfg)
{
	uint64_t n;

	if (sessweep_new(ev, ss, &fake_ops, cfg, sw) < 0)
		abort();
	if (sessweep_run(*sw) < 0)
		abort();
	if (sessweep_run(*sw) != -EBUSY) /* one check at a time */
		return 0;
	(void)event_timer_in(ev, 1, watch_cb, *sw);
	(void)event_run(ev);
	n = sessweep_checks(*sw);
	sessweep_free(*sw);
	*sw = NULL;
	return n;
}

static void
reset_fake(void)
{
	memset(&fake, 0, sizeof(fake));
	fake.loop_thread = pthread_self();
	fake.off_loop = 1;
	fake.dead_uid = (uid_t)-2;
	fake.now = 10000;
}

TEST(test_check_ends_what_no_longer_holds)
{
	struct event_loop *ev = event_new();
	struct sessions *ss = sessions_new();
	struct sessweep_cfg cfg = { .check_ms = 60000,
		.idle_s = 3600,
		.liveness = 1 };
	struct sessweep *sw = NULL;
	char id[SESSION_ID_LEN + 1], s[SESSION_SECRET_LEN + 1];
	int64_t exp;

	reset_fake();
	fake.dead_uid = 1002;
	fake.gone_user = "carol";
	/* alice: alive, account fine. bob: no process. carol: deleted.
	 * dave: opened 10 s ago, no process yet (within the grace). erin:
	 * idle for more than session_idle. */
	ASSERT_EQ(sessions_open(ss, "alice", 1001, "sshd", NULL, NULL, 9000,
		      id),
	    0);
	ASSERT_EQ(sessions_open(ss, "bob", 1002, "sshd", NULL, NULL, 9000, id),
	    0);
	ASSERT_EQ(sessions_open(ss, "carol", 1003, "sshd", NULL, NULL, 9000,
		      id),
	    0);
	ASSERT_EQ(sessions_secret_mint(ss, "carol", 1003, NULL, 9000, 6000, 0,
		      s, &exp),
	    0);
	ASSERT_EQ(sessions_open(ss, "dave", 1002, "sshd", NULL, NULL, 9990, id),
	    0);
	ASSERT_EQ(sessions_open(ss, "erin", 1005, "sshd", NULL, NULL, 6000, id),
	    0);
	ASSERT_EQ(run_check(ev, &sw, ss, &cfg), 1);
	ASSERT_TRUE(fake.off_loop);
	ASSERT_EQ(fake.scans, 1);
	ASSERT_EQ(fake.accounts, 4); /* erin had ended before the snapshot */
	ASSERT_EQ(sessions_count(ss), 2); /* alice, dave */
	ASSERT_EQ(sessions_secret_count(ss), 0);
	ASSERT_EQ(sessions_counters(ss)->ended_idle, 1);
	ASSERT_EQ(sessions_counters(ss)->ended_no_process, 1);
	ASSERT_EQ(sessions_counters(ss)->ended_account, 1);
	ASSERT_EQ(sessions_counters(ss)->secrets_ended_account, 1);
	sessions_free(ss);
	event_free(ev);
}

TEST(test_unknown_answers_end_nothing)
{
	struct event_loop *ev = event_new();
	struct sessions *ss = sessions_new();
	struct sessweep_cfg cfg = { .check_ms = 60000,
		.idle_s = 0,
		.liveness = 1 };
	struct sessweep *sw = NULL;
	char id[SESSION_ID_LEN + 1];

	reset_fake();
	fake.dead_uid = 1001;
	fake.scan_result = -EPERM; /* hidepid: absence proves nothing */
	ASSERT_EQ(sessions_open(ss, "alice", 1001, "sshd", NULL, NULL, 1, id),
	    0);
	ASSERT_EQ(run_check(ev, &sw, ss, &cfg), 1);
	ASSERT_EQ(sessions_count(ss), 1);
	/* Liveness off: the scan does not even run. */
	reset_fake();
	fake.dead_uid = 1001;
	cfg.liveness = 0;
	ASSERT_EQ(run_check(ev, &sw, ss, &cfg), 1);
	ASSERT_EQ(fake.scans, 0);
	ASSERT_EQ(fake.accounts, 1);
	ASSERT_EQ(sessions_count(ss), 1);
	sessions_free(ss);
	event_free(ev);
}

static struct sessions *watched;

static void
until_empty_cb(struct event_loop *ev, void *arg)
{
	int64_t *deadline = arg;

	if (sessions_count(watched) == 0 || event_now_ms(ev) > *deadline) {
		event_stop(ev);
		return;
	}
	(void)event_timer_in(ev, 5, until_empty_cb, arg);
}

/*
 * A directory that hangs holds the check thread, not the loop: the timer
 * still ends idle sessions meanwhile, and no second check starts.
 */
TEST(test_idle_ends_while_a_check_hangs)
{
	struct event_loop *ev = event_new();
	struct sessions *ss = sessions_new();
	struct sessweep_cfg cfg = { .check_ms = 20,
		.idle_s = 100,
		.liveness = 1 };
	struct sessweep *sw = NULL;
	char id[SESSION_ID_LEN + 1];
	int64_t deadline;

	reset_fake();
	fake.now = 9050;
	fake.is_blocked = 1;
	ASSERT_EQ(sessions_open(ss, "alice", 1001, "sshd", NULL, NULL, 9000,
		      id),
	    0);
	ASSERT_EQ(sessweep_new(ev, ss, &fake_ops, &cfg, &sw), 0);
	ASSERT_EQ(sessweep_run(sw), 0); /* the thread now hangs in NSS */
	fake.now = 9200;		/* alice is idle from now on */
	watched = ss;
	deadline = event_now_ms(ev) + 5000;
	(void)event_timer_in(ev, 5, until_empty_cb, &deadline);
	(void)event_run(ev);
	ASSERT_EQ(sessions_count(ss), 0);
	ASSERT_EQ(sessions_counters(ss)->ended_idle, 1);
	ASSERT_EQ(sessweep_checks(sw), 0); /* still hanging */
	ASSERT_ERR(sessweep_run(sw), -EBUSY);
	pthread_mutex_lock(&block_mu);
	fake.is_blocked = 0;
	pthread_cond_broadcast(&block_cv);
	pthread_mutex_unlock(&block_mu);
	(void)event_timer_in(ev, 1, watch_cb, sw);
	(void)event_run(ev);
	ASSERT_TRUE(sessweep_checks(sw) >= 1);
	ASSERT_EQ(fake.accounts, 1); /* the snapshot held alice only */
	sessweep_free(sw);
	sessions_free(ss);
	event_free(ev);
}

TEST(test_proc_scan_on_this_machine)
{
	uid_t uids[2];
	unsigned char alive[2] = { 9, 9 };
	const char *dir = fixture_tmpdir("sessweep");
	struct timespec t0, t1;

	uids[0] = getuid();
	uids[1] = UNUSED_UID;
	if (uids[0] > UNUSED_UID)
		abort();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(sessweep_proc_scan("/proc", uids, 2, alive), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ASSERT_EQ(alive[0], 1);
	ASSERT_EQ(alive[1], 0); /* a full scan: nobody runs as it */
	printf("  full /proc scan (no match for one uid): %.2f ms\n",
	    (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	/* No pid 1 visible (hidepid, or not a procfs): refused, not "dead". */
	ASSERT_TRUE(dir != NULL);
	ASSERT_ERR(sessweep_proc_scan(dir, uids, 2, alive), -EPERM);
	ASSERT_EQ(sessweep_proc_scan("/proc", uids, 0, alive), 0);
}

/* The real directory: root exists as uid 0, a made-up name does not. */
TEST(test_system_account)
{
	ASSERT_EQ(sessweep_system_ops.account(NULL, "root", 0), 1);
	ASSERT_EQ(sessweep_system_ops.account(NULL, "root", 4321), 0);
	ASSERT_EQ(sessweep_system_ops.account(NULL, "no-such-user-e11", 4321),
	    0);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_check_ends_what_no_longer_holds);
	RUN(test_unknown_answers_end_nothing);
	RUN(test_idle_ends_while_a_check_hangs);
	RUN(test_proc_scan_on_this_machine);
	RUN(test_system_account);
	TEST_MAIN_END();
}
