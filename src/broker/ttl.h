/* ttl.h — per-message time to live (README, "TTL").
 *
 * A producer gives a message a TTL with the header RQ_HEADER_TTL ("raftq-ttl-ms"), whose value is
 * a decimal number of milliseconds, 1..PROTO_TTL_MS_MAX. The message expires TTL after it became
 * visible: its batch's append (or, for a delayed message, its release) on the leader's clock.
 * An expired message is never delivered: whoever serves a fetch (the leader, or a follower by its
 * own clock) puts a PLACEHOLDER at its offset instead — a record with the original timestamp, no
 * key, no value, and the single header RQ_HEADER_EXPIRED ("raftq-expired") — so offsets stay
 * dense on the wire and readers' checks of order and gaps hold; the client library skips
 * placeholders (they never reach the application). Header names starting with "raftq-" are
 * reserved: a produce whose records carry any other one, or a TTL that is not a valid number, is
 * refused with RQ_EINVAL. Nothing is rewritten in the log: retention deletes expired records
 * like any other. */
#ifndef RQ_BROKER_TTL_H
#define RQ_BROKER_TTL_H

#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

#define RQ_HEADER_TTL     "raftq-ttl-ms"
#define RQ_HEADER_EXPIRED "raftq-expired"
#define RQ_HEADER_PREFIX  "raftq-"
/* The longest TTL: 366 days, in milliseconds. */
#define PROTO_TTL_MS_MAX (UINT64_C(366) * 24 * 60 * 60 * 1000)

enum { TTL_PLACEHOLDER_MAX = 10 + 1 + 1 + 1 + 1 + 13 + 1 };   /* see ttl_placeholder */

/* A record's TTL in *ttl_ms: 1 when it has one, 0 when not, RQ_EINVAL when its reserved headers
 * are wrong (a malformed TTL, two of them, or another "raftq-" header). */
int ttl_of(const struct proto_record *r, uint64_t *ttl_ms);
/* Whether a produce's records may be taken: 0, or RQ_EINVAL (ttl_of's refusal for any record). */
int ttl_check_records(const struct proto_records *rs);
/* Whether record r, of a batch made visible at visible_ns, has expired at now_ns. */
int ttl_expired(const struct proto_record *r, uint64_t visible_ns, uint64_t now_ns);
/* Writes the placeholder of an expired record with that timestamp; returns its size. */
size_t ttl_placeholder(uint8_t buf[TTL_PLACEHOLDER_MAX], uint64_t timestamp);
/* Whether r is a placeholder (a reader skips it). */
int ttl_is_placeholder(const struct proto_record *r);

#endif
