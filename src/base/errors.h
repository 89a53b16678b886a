/* Error codes shared by every layer. Functions that can fail return 0 or a negative RQ_E* code;
 * rq_strerror() names it. The list is one enum so a client can act on any code it sees. */
#ifndef RQ_BASE_ERRORS_H
#define RQ_BASE_ERRORS_H

enum rq_error {
    RQ_OK = 0,
    RQ_EIO = -1,       /* an I/O operation failed; after a failed fsync the data's fate is unknown */
    RQ_ENOSPC = -2,    /* no space left on the device; nothing was written */
    RQ_ENOENT = -3,    /* no such file */
    RQ_EEXIST = -4,    /* file exists */
    RQ_EBADF = -5,     /* not an open file handle */
    RQ_EINVAL = -6,    /* an argument is out of its documented range */
    RQ_ETRUNC = -7,    /* input ended before a complete value could be read */
    RQ_ECORRUPT = -8,  /* input failed a checksum or a structural check */
    RQ_ETOOBIG = -9,   /* a length exceeds its configured maximum */
    RQ_EBUSY = -10,    /* a bounded queue or buffer is full: retry later */
    RQ_ENOMEM = -11,   /* a fixed-capacity pool or arena is exhausted */
    RQ_ERANGE = -12,   /* a value (offset, index) is outside the valid range */
    RQ_EMFILE = -13,   /* too many open file handles */
    RQ_ECLOSED = -14,  /* the connection or component has been shut down */
    RQ_ENOTLEADER = -15, /* this node does not lead the Raft group: ask the leader */
    RQ_EVERSION = -16,   /* a protocol version this node does not speak */
    RQ_ETYPE = -17,      /* a message type this node does not know */
    RQ_ENOTOPIC = -18,   /* no such topic (or partition) */
    RQ_ETOPICEXISTS = -19, /* a topic of that name exists */
    RQ_ESEQUENCE = -20,  /* an idempotent producer's sequence is out of order */
    RQ_ETIMEOUT = -21,   /* no answer in time: the outcome is unknown */
    RQ_EFENCED = -22,    /* a consumer group's newer generation, or another member, owns this
                            partition now: this member's claim, fetch or commit is refused */
    RQ_ENOMEMBER = -23,  /* the group coordinator does not know this member (its session expired,
                            or the coordinator changed): join again */
    RQ_ERROR_MIN = -23,
};

/* A static, human-readable message for code (0 or a negative RQ_E*); never NULL. */
const char *rq_strerror(int code);

#endif
