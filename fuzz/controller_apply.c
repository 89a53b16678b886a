/* Fuzz target: the controller's state machine (src/meta/controller.c).
 *
 * The input is a script of commands, each a length byte and that many bytes, applied in order to
 * two controllers (two replicas): any byte string must apply without a crash (a command that does
 * not decode is a counted no-op), and the two replicas must end byte-identical. Their image must
 * restore into a third controller that then writes the same image, and the raw input, taken as
 * an image, must restore or be refused without touching the state. To reach real states quickly,
 * a byte 0xFF as a length instead applies one well-formed command chosen by the next byte
 * (register, heartbeat, expire, create, delete, init-producer, leader), with its fields from the
 * bytes after it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "meta/controller.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { STEPS_MAX = 200 };

static uint8_t at(const uint8_t *data, size_t size, size_t i) { return i < size ? data[i] : 0; }

/* A well-formed command from the bytes at data[*pos..]; returns its size in cmd. */
static size_t built(const uint8_t *data, size_t size, size_t *pos, uint8_t *cmd) {
    uint8_t kind = at(data, size, (*pos)++) % 7;
    uint8_t x = at(data, size, (*pos)++), y = at(data, size, (*pos)++);
    static const char *const names[] = {"a", "b", "orders", "t-1"};
    uint64_t now = (uint64_t)x * 100;
    switch (kind) {
    case 0: return controller_cmd_register(cmd, (uint32_t)(x % 9) + 1, "host:1", now);
    case 1: return controller_cmd_heartbeat(cmd, (uint32_t)(x % 9) + 1, now);
    case 2: return controller_cmd_expire(cmd, now + (uint64_t)y * 1000);
    case 3: {
        const char *n = names[y % 4];
        struct proto_create_topic_req req = {
            .name = {(const uint8_t *)n, (uint32_t)strlen(n)}, .partitions = (uint32_t)x % 40 + 1,
            .replication = (uint32_t)y % 4 + 1, .max_message_bytes = 100};
        return controller_cmd_create_topic(cmd, &req);
    }
    case 4: return controller_cmd_delete_topic(cmd, names[x % 4]);
    case 5: return controller_cmd_init_producer(cmd);
    default: return controller_cmd_leader(cmd, names[x % 4], y % 40, (uint32_t)(x % 9) + 1, y);
    }
}

static void same_image(const struct controller *a, const struct controller *b) {
    size_t ca = controller_image_size(a), cb = controller_image_size(b);
    uint8_t *ia = malloc(ca), *ib = malloc(cb);
    RQ_ASSERT(ia != NULL && ib != NULL);
    size_t na = controller_image(a, ia, ca), nb = controller_image(b, ib, cb);
    RQ_ASSERT(na > 0 && na == nb && memcmp(ia, ib, na) == 0);
    free(ia);
    free(ib);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct controller *a = controller_create(1000), *b = controller_create(1000);
    RQ_ASSERT(a != NULL && b != NULL);
    size_t pos = 0;
    for (int step = 0; step < STEPS_MAX && pos < size; step++) {
        uint8_t len = data[pos++];
        uint8_t cmd[CONTROLLER_CMD_MAX];
        const uint8_t *bytes = cmd;
        size_t n;
        if (len == 0xFF) {
            n = built(data, size, &pos, cmd);
        } else {
            n = len <= size - pos ? len : size - pos;
            bytes = data + pos;
            pos += n;
        }
        struct controller_result ra, rb;
        controller_apply(a, bytes, n, &ra);
        controller_apply(b, bytes, n, &rb);
        RQ_ASSERT(ra.error == rb.error && ra.producer_id == rb.producer_id);
    }
    same_image(a, b);
    /* The image restores into a third replica, which writes it back the same. */
    size_t cap = controller_image_size(a);
    uint8_t *img = malloc(cap);
    RQ_ASSERT(img != NULL);
    size_t n = controller_image(a, img, cap);
    struct controller *c = controller_create(1000);
    RQ_ASSERT(c != NULL && controller_restore(c, img, n) == 0);
    same_image(a, c);
    /* Raw bytes as an image: restored, or refused with the state untouched. */
    if (controller_restore(c, data, size) != 0) same_image(a, c);
    free(img);
    controller_destroy(a);
    controller_destroy(b);
    controller_destroy(c);
    return 0;
}
