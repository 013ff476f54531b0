/*
 * record.h - a user's consent record: encode, seal, load and save
 * through a store backend with compare-and-swap versions.
 *
 * Plain form (sealed before it reaches a backend) is JSON:
 * {"v":1,"user":..,"uid":..,"oid":..,"tid":..,"username":..,
 *  "refresh_token":..|null,"scopes":[..],"created":..,"updated":..,
 *  "last_refresh":.., "epoch":.., "gen":..,
 *  "flow":{..} (optional: a pending device flow),
 *  "code_flow":{..} (optional: a pending authorization-code flow),
 *  "client":"confidential" (optional: absent = public)}
 * A record without a refresh token still pins the account (oid, tid)
 * after a REAUTH or logout; only admin revoke deletes the record.
 *
 * epoch and gen order a user's rows for the rollback check (marks.h):
 * they are sealed, so only a key holder can make a newer one. epoch is
 * the time (unix microseconds) the row was created, new whenever it is
 * created again; gen counts the writes within an epoch. Records sealed
 * before they existed decode as 0 (and older credd ignores them).
 */
#ifndef CREDD_RECORD_H
#define CREDD_RECORD_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "marks.h"

/* A stored row older than this node has seen (record_load_marked). */
#define RECORD_EROLLBACK (-ENOTRECOVERABLE)

struct secret;
struct seal;
struct store;

/*
 * A device flow in progress, shared through the store so that every node
 * of a cluster shows the same URL and code. Only the node that started
 * it polls; the others show it and wait for the consent to appear.
 */
struct record_flow {
	struct secret *device_code;
	char *user_code;
	char *verification_uri;
	char *message; /* may be NULL */
	char *scope;
	char *node;	    /* the node that polls */
	int64_t expires_on; /* unix s */
	int64_t interval;
};

/*
 * An authorization-code flow in progress (cluster mode), shared through
 * the store so that any node can follow its link or redeem its code
 * (docs/cluster.md). Sealed as "code_flow", beside "flow", so an older
 * credd ignores it. state and link are "" once used: the store's
 * compare-and-swap makes each single use cluster-wide.
 */
struct record_cflow {
	struct secret *verifier; /* PKCE; never leaves the sealed record */
	char *state;		 /* "" once a code or error came back */
	char *link;		 /* "" once followed (or the state used) */
	char *redirect_uri;
	char *authorize_url;
	char *signin_url; /* what users are shown: link or authorize URL */
	char *note;	  /* may be NULL: why this method (the fallback) */
	char *scope;
	char *node;	    /* the node that started it */
	int client;	    /* enum idp_client of the grant */
	int64_t expires_on; /* unix s */
};

struct record {
	char *user;
	uid_t uid; /* uid at consent */
	char *oid; /* pinned Entra account */
	char *tid;
	char *username;		      /* preferred_username at consent */
	struct secret *refresh_token; /* NULL: consent dropped, pin kept */
	char **scopes;		      /* granted scopes, NULL-terminated */
	int64_t created, updated, last_refresh; /* unix seconds */
	uint64_t version; /* store version it was loaded from / saved as */
	uint64_t epoch;	  /* sealed: creation of its row, unix us */
	uint64_t gen;	  /* sealed: writes within that epoch */
	struct record_flow *flow;   /* pending device flow (cluster), or NULL */
	struct record_cflow *cflow; /* pending code flow (cluster), or NULL */
	/*
	 * The kind of client whose grant obtained refresh_token (enum
	 * idp_client: 0 public, 1 confidential), so its refreshes carry the
	 * credential Entra expects. Sealed as "client" only when
	 * confidential: records sealed before it, and by an older credd,
	 * read as public (and an older credd ignores the member).
	 */
	int client;
};

void record_flow_free(struct record_flow *f);
struct record_flow *record_flow_dup(const struct record_flow *f);

void record_flow_code_free(struct record_cflow *f);
struct record_cflow *record_flow_code_dup(const struct record_cflow *f);

struct record *record_new(const char *user, uid_t uid);
void record_free(struct record *r);
/* Deep copy (refresh token included); NULL on ENOMEM. */
struct record *record_dup(const struct record *r);
/* Replace scopes with a space-separated list. 0 or -ENOMEM. */
int record_set_scopes(struct record *r, const char *space_list);

/* Encode to plain JSON bytes in a secret / decode. -EBADMSG on bad input. */
int record_encode(const struct record *r, struct secret **out);
int record_decode(const struct secret *plain, uint64_t version,
    struct record **out);

/*
 * Load user's record: get, open, decode. -ENOENT if none; -EBADMSG or
 * -ENOKEY if it cannot be opened; backend errors as store.h.
 */
int record_load(struct store *st, const struct seal *seal, const char *tenant,
    const char *user, struct record **out);
/*
 * After record_load said -ENOKEY or -EBADMSG: why user's stored record
 * does not open, for an admin's log line (seal_explain's words, e.g. the
 * id of the key it was sealed with that the ring lacks). Reads the blob
 * again. Always fills buf (n > 0); 0, or the backend's -errno.
 */
int record_explain(struct store *st, const struct seal *seal,
    const char *tenant, const char *user, char *buf, size_t n);
/*
 * Seal and put_if(r->version). The sealed generation is r->gen + 1; a
 * create (r->version 0) starts a new epoch (now, and above r->epoch)
 * at generation 1. On success r->version is the new version and
 * r->epoch, r->gen what was sealed; on failure r is unchanged.
 * -ESTALE when another writer got there first (reload and retry).
 */
int record_save(struct store *st, const struct seal *seal, const char *tenant,
    struct record *r);

/* What a refused row held, and the mark it was refused by. */
struct record_rollback {
	uint64_t version;	/* its store version (CAS: to write over it) */
	uint64_t epoch, gen;	/* its sealed epoch and generation */
	struct marks_mark mark; /* this node's mark */
};

/*
 * record_load, checked against this node's high-water mark (mk NULL: no
 * check). A row the mark does not admit is refused: RECORD_EROLLBACK,
 * *rb filled, *out NULL, the mark unchanged. An admitted row raises the
 * mark; -ENOENT turns a live mark into a deletion (this node saw the row
 * gone). *marks_err: 0, or -errno when a mark could not be written
 * (the result stands; the mark in memory is right).
 */
int record_load_marked(struct store *st, const struct seal *seal,
    struct marks *mk, const char *tenant, const char *user, struct record **out,
    struct record_rollback *rb, int *marks_err);

/*
 * record_save numbered above this node's mark too, then the mark raised
 * to what was sealed. may_create: a new consent, which may follow a
 * deletion this node saw (it starts a new epoch, even over a refused
 * row); otherwise a record of an epoch seen deleted is not written:
 * -ENOENT (the deletion wins). -ESTALE also when the mark is of a newer
 * epoch than r (reload, adopt the stored epoch, retry). *marks_err as
 * record_load_marked.
 */
int record_save_marked(struct store *st, const struct seal *seal,
    struct marks *mk, const char *tenant, struct record *r, int may_create,
    int *marks_err);
/* del_if(r->version). */
int record_delete(struct store *st, const char *tenant, const struct record *r);

/*
 * Reseal every record of tenant under the active key (credd rekey).
 * *count = records rewritten. 0 or -errno (stops at the first failure).
 */
int record_rekey_all(struct store *st, const struct seal *seal,
    const char *tenant, size_t *count);

#endif
