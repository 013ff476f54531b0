/*
 * bind.c - `credctl admin bind CGROUP USER [WORKLOAD]`, `admin unbind
 * CGROUP`, `admin bindings` (issue 14): for an orchestrator that starts
 * containers itself (docs/containers.md). bind makes every caller in
 * the cgroup (a cgroup v2 path as /proc/PID/cgroup shows it) that user
 * with that workload kind, whatever its uid, until the cgroup goes or
 * unbind; bindings lists them; text or --json.
 *
 * Must never: decide who may bind (credd does: root only, from the
 * caller's SO_PEERCRED uid), or print a field credd sent without
 * out_clean (no terminal escapes).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "entra/proto.h"

#include "call.h"
#include "cmd.h"
#include "exit.h"
#include "out.h"

static int
bad(const char *what)
{
	out_errorf("admin %s", what);
	return EXIT_USAGE;
}

static int
is_arg(const char *s)
{
	return s[0] != '\0' && strlen(s) <= PROTO_STR_MAX;
}

static int
roundtrip(struct ctx *c, json_t *req, json_t **resp)
{
	int r;

	if (req == NULL)
		return EXIT_ERR;
	r = call_roundtrip(c, req, resp, 0);
	json_decref(req);
	return r;
}

int
bind_cmd(struct ctx *c, const char *sub, char **pos, size_t npos, int is_json)
{
	char a[256], b[64], k[32], s[64];
	json_t *req, *resp = NULL, *arr, *e;
	size_t i;
	int r;

	if (strcmp(sub, "bind") == 0) {
		if (npos < 3 || npos > 4 || !is_arg(pos[1]) ||
		    !is_arg(pos[2]) || (npos == 4 && !is_arg(pos[3])))
			return bad("bind: usage: credctl admin bind CGROUP "
				   "USER [WORKLOAD]");
		if (pos[1][0] != '/')
			return bad("bind: CGROUP is a cgroup v2 path, as in "
				   "/proc/PID/cgroup (/kubepods.slice/pod1)");
		req = call_new_request("bind");
		if (req != NULL &&
		    (json_object_set_new(req, "cgroup", json_string(pos[1])) <
			    0 ||
			json_object_set_new(req, "user", json_string(pos[2])) <
			    0 ||
			(npos == 4 &&
			    json_object_set_new(req, "workload",
				json_string(pos[3])) < 0))) {
			json_decref(req);
			req = NULL;
		}
		r = roundtrip(c, req, &resp);
		if (r != EXIT_OK)
			return r;
		if (is_json)
			r = out_json(resp);
		else
			printf("Bound %s to %s (%s), session %s.\n",
			    out_clean(a, sizeof(a), out_jstr(resp, "cgroup")),
			    out_clean(b, sizeof(b), out_jstr(resp, "user")),
			    out_clean(k, sizeof(k), out_jstr(resp, "workload")),
			    out_clean(s, sizeof(s), out_jstr(resp, "session")));
		json_decref(resp);
		return r;
	}
	if (strcmp(sub, "unbind") == 0) {
		if (npos != 2 || !is_arg(pos[1]))
			return bad(
			    "unbind: usage: credctl admin unbind CGROUP");
		req = call_new_request("unbind");
		if (req != NULL &&
		    json_object_set_new(req, "cgroup", json_string(pos[1])) <
			0) {
			json_decref(req);
			req = NULL;
		}
		r = roundtrip(c, req, &resp);
		if (r == EXIT_OK && !is_json)
			printf("Unbound %s.\n",
			    out_clean(a, sizeof(a), pos[1]));
		else if (r == EXIT_OK)
			r = out_json(resp);
		json_decref(resp);
		return r;
	}
	if (npos != 1)
		return bad("bindings: usage: credctl admin bindings [--json]");
	r = call_op(c, "bindings", &resp);
	if (r != EXIT_OK)
		return r;
	if (is_json) {
		r = out_json(resp);
		json_decref(resp);
		return r;
	}
	arr = json_object_get(resp, "bindings");
	printf("%-40s %-16s %-10s %s\n", "CGROUP", "USER", "WORKLOAD",
	    "SESSION");
	json_array_foreach(arr, i, e) printf("%-40s %-16s %-10s %s\n",
	    out_clean(a, sizeof(a), out_jstr(e, "cgroup")),
	    out_clean(b, sizeof(b), out_jstr(e, "user")),
	    out_clean(k, sizeof(k), out_jstr(e, "workload")),
	    out_clean(s, sizeof(s), out_jstr(e, "session")));
	json_decref(resp);
	return EXIT_OK;
}
