/* host_server.h — the simulator node callbacks of a test server that is a node host and nothing
 * more (tests/unit/test_host.c, test_controller_group.c): each forwards to the host found as the
 * first member of the test's server struct. Header-only, for tests. */
#ifndef RQ_TESTS_HOST_SERVER_H
#define RQ_TESTS_HOST_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "node/host.h"

/* A test's server struct begins with its host. */
static inline struct host *host_of(void *node) { return *(struct host **)node; }

static inline void host_server_start(void *node) { host_start(host_of(node)); }
static inline void host_server_peer(void *node, uint32_t from, const void *buf, size_t len) {
    host_on_peer_message(host_of(node), from, buf, len);
}
static inline void host_server_client(void *node, uint64_t conn, const void *buf, size_t len) {
    (void)node, (void)conn, (void)buf, (void)len;
}
static inline void host_server_disk(void *node, struct rq_disk_req *req) {
    host_on_disk_done(host_of(node), req);
}
static inline void host_server_closed(void *node, uint64_t conn) { (void)node, (void)conn; }

#endif
