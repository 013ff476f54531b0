/*
 * msi_req.h - one SDK endpoint request, as msi.c hands it over: check it
 * and prove its caller, shape the broker's answer (or an error) into the
 * managed-identity response, queue that response with libmicrohttpd.
 */
#ifndef CREDD_MSI_REQ_H
#define CREDD_MSI_REQ_H

struct msi_req;
struct reply;

/* {"error": code, "error_description": desc} as r's response. */
void msi_req_error(struct msi_req *r, unsigned status, const char *code,
    const char *desc);
/* A wire error (errmap.h) as r's response, with its HTTP status. */
void msi_req_wire_error(struct msi_req *r, int err, const char *desc);
/*
 * Check the request (msi_parse_request) and prove the caller; on success
 * the caller, the resource and the scope are set and 0 is returned, else
 * the error response is set (and a refusal audited) and -1 is returned.
 */
int msi_req_check(struct msi_req *r, const char *url, const char *method);
/*
 * The broker's answer (JSON, or bytes: the same response as a protocol
 * line; empty: out of memory) as r's response: the token in the App
 * Service or IMDS shape, or the error with its HTTP status and, for a
 * sign-in, the device-code URL and code in error_description.
 */
void msi_req_from_broker(struct msi_req *r, const struct reply *rep);
/* Queue r's response with MHD (its body is taken, wiped when MHD frees it). */
int msi_req_queue(struct msi_req *r);

#endif
