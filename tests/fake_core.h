/*
 * fake_core.h - the broker on a bench, for unit tests: a scripted IdP
 * (idp.h) whose requests wait until the test answers them with a canned
 * HTTP status and body (parsed by oauth.c, as the real one does), an
 * in-memory store (store_mem.h) that counts its writes, a fixed clock
 * (clock.h) that fires the broker's timers only when the test advances
 * it, and requests made the way dispatch.c makes them (a waiter whose
 * reply is kept). A sequence number orders store writes and replies, so
 * a test can say which came first.
 *
 * Nothing here needs root, the network or the emulator; the store
 * thread (storeq.c) and the loop are the real ones, run in 1 ms slices
 * until the store has nothing pending (fake_core_settle).
 *
 * Must never: keep process-wide state (everything hangs off struct
 * fake_core), or sleep longer than a slice.
 */
#ifndef FAKE_CORE_H
#define FAKE_CORE_H

#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "entra/proto.h"
#include "waiter.h"

#define FAKE_TENANT "11111111-2222-3333-4444-555555555555"
#define FAKE_CLIENT "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
#define FAKE_SCOPE "https://storage.azure.com/.default"
#define FAKE_T0 INT64_C(1900000000) /* the fixed clock's start, unix s */
/* client_auth = secret: the secret the bench's credential carries. */
#define FAKE_CLIENT_SECRET "fake-client-secret"

struct fake_core;
struct config;

enum fake_grant {
	FAKE_DEVICE,
	FAKE_POLL,
	FAKE_REFRESH,
	FAKE_CODE, /* code_redeem */
	FAKE_APP,  /* client_credentials (identity = app) */
	FAKE_NGRANTS
};

/* One request, as dispatch.c would make it; the answer lands in resp. */
struct fake_call {
	struct waiter w;
	struct caller caller;
	struct fake_core *fc;
	char user[64];	   /* caller.user points here */
	json_t *resp;	   /* the answer (owned), NULL until answered */
	uint64_t answered; /* sequence number of the answer, 0: none */
	int r;		   /* what the op returned */
};

/*
 * A broker over the fakes with this config ([entra] and [scopes] are
 * given; extra is appended, may be NULL). NULL on failure (printed).
 */
struct fake_core *fake_core_new(const char *extra);
/* The same on a cluster store (store_mem_open_cluster): one node. */
struct fake_core *fake_core_new_cluster(const char *extra);
void fake_core_free(struct fake_core *fc);
struct broker *fake_core_broker(struct fake_core *fc);
const struct config *fake_core_config(const struct fake_core *fc);

/* ---- requests ---- */

/*
 * For a request made another way (test_dispatch): c zeroed, its caller
 * uid/user (NULL: no name), its waiter answering into c. Then pass what
 * the op returned to fake_core_call_returned.
 */
void fake_core_call_init(struct fake_core *fc, struct fake_call *c,
    enum proto_op op, const char *user, uid_t uid);
void fake_core_call_returned(struct fake_call *c, int r, struct reply *out);

/* Start op for user/uid on c (zeroed first). The op's return is c->r. */
void fake_core_token(struct fake_core *fc, struct fake_call *c,
    const char *user, uid_t uid);
/* The same, wanting the token valid for min_valid s more. */
void fake_core_token_valid(struct fake_core *fc, struct fake_call *c,
    const char *user, uid_t uid, int64_t min_valid);
/* The same with the CAE fields (broker_token_cae; claims compact JSON). */
void fake_core_token_cae(struct fake_core *fc, struct fake_call *c,
    const char *user, uid_t uid, int cae, const char *claims);
/*
 * The same as a caller whose workload identity is app_identity
 * (WAITER_APP, WAITER_USER_OR_APP; kind app) asking for scope.
 */
void fake_core_token_app(struct fake_core *fc, struct fake_call *c,
    const char *user, uid_t uid, int app_identity, const char *scope);
void fake_core_login(struct fake_core *fc, struct fake_call *c,
    const char *user, uid_t uid, int64_t wait);
/* The login_code op: url is what the user pasted. */
void fake_core_login_code(struct fake_core *fc, struct fake_call *c,
    const char *user, uid_t uid, const char *url);
void fake_core_status(struct fake_core *fc, struct fake_call *c,
    const char *user, uid_t uid);
void fake_core_logout(struct fake_core *fc, struct fake_call *c,
    const char *user, uid_t uid);
/* Let go of an answered (or abandoned) call. */
void fake_core_call_done(struct fake_call *c);
/* "ok" answers: "" ; errors: their wire code; NULL when not answered. */
const char *fake_core_code(const struct fake_call *c);
/* A string field of the answer (of its error object for an error). */
const char *fake_core_field(const struct fake_call *c, const char *key);
int64_t fake_core_int(const struct fake_call *c, const char *key);
/* A counter of broker_metrics_stats (-1: none). */
int64_t fake_core_stat(struct fake_core *fc, const char *key);

/* ---- the loop and the clock ---- */

/* Run the loop until the store thread has nothing pending. */
void fake_core_settle(struct fake_core *fc);
/* Move the fixed clock on by secs; fire the timers now due; settle. */
void fake_core_advance(struct fake_core *fc, int64_t secs);
int64_t fake_core_now(const struct fake_core *fc);

/* ---- the IdP ---- */

/* Requests of kind waiting for an answer. */
unsigned fake_core_idp_waiting(const struct fake_core *fc,
    enum fake_grant kind);
/* Requests of kind ever sent. */
unsigned fake_core_idp_sent(const struct fake_core *fc, enum fake_grant kind);
/* The refresh token the oldest waiting refresh grant carries ("" none). */
const char *fake_core_idp_refresh_token(const struct fake_core *fc);
/* The claims parameter of the oldest waiting refresh ("" none). */
const char *fake_core_idp_claims(const struct fake_core *fc);
/* The claims parameter of the oldest waiting device-code poll ("" none). */
const char *fake_core_idp_poll_claims(const struct fake_core *fc);
/* The scope string of the oldest waiting refresh or app grant ("" none). */
const char *fake_core_idp_scope(const struct fake_core *fc);
/*
 * The oldest waiting request of kind: its client kind (enum idp_client:
 * 0 public, 1 confidential; -1 when none waits), and for FAKE_CODE the
 * code, code_verifier and redirect_uri it carries ("" when none).
 */
int fake_core_idp_client(const struct fake_core *fc, enum fake_grant kind);
const char *fake_core_idp_code(const struct fake_core *fc);
/*
 * The credential the oldest waiting request of kind carries, as form
 * text ("client_secret=..." or "client_assertion_type=...&
 * client_assertion=..."), decorated as idp_http.c does for a
 * confidential grant ("" for a public one, or when none waits). A
 * credential that cannot be made fails the op with IDP_ECREDENTIAL.
 */
const char *fake_core_idp_cred(const struct fake_core *fc,
    enum fake_grant kind);
const char *fake_core_idp_verifier(const struct fake_core *fc);
const char *fake_core_idp_redirect(const struct fake_core *fc);
/*
 * Answer the oldest waiting request of kind with an HTTP status, body
 * and Retry-After (-1: none), then settle. 0, or -ENOENT when none waits.
 */
int fake_core_idp_answer(struct fake_core *fc, enum fake_grant kind,
    long status, const char *body, int64_t retry_after);
/* A token endpoint success body: access and refresh token (NULL: none). */
const char *fake_core_token_body(struct fake_core *fc, const char *access,
    const char *refresh, int64_t expires_in, const char *oid,
    const char *username);
/* A device code endpoint success body (user code ABCD-EFGH). */
const char *fake_core_device_body(struct fake_core *fc, int64_t expires_in,
    int64_t interval);

/*
 * Sign user in through a device flow (login, device code, one poll
 * answered with an id_token for oid/username and refresh token rt).
 * 0, or -1 (printed) when the flow did not end "ready".
 */
int fake_core_sign_in(struct fake_core *fc, const char *user, uid_t uid,
    const char *oid, const char *username, const char *rt);

/* The user most tests sign in: alice, uid 1001, her oid. */
#define FAKE_CORE_ALICE "alice"
#define FAKE_CORE_ALICE_UID 1001
#define FAKE_CORE_ALICE_OID "0a0a0a0a-0000-0000-0000-00000000000a"
/*
 * A bench (default options) with alice signed in (alice@contoso.com,
 * refresh token RT-1); NULL (printed) when that fails.
 */
struct fake_core *fake_core_new_alice(void);

/* ---- the store ---- */

/* Successful writes (put_if) and deletions so far. */
unsigned fake_core_store_puts(const struct fake_core *fc);
unsigned fake_core_store_dels(const struct fake_core *fc);
/* Sequence number of the last successful write, 0: none. */
uint64_t fake_core_store_last_put(const struct fake_core *fc);
/* Is a record for user stored? */
int fake_core_store_has(const struct fake_core *fc, const char *user);

#endif
