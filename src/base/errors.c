#include "base/errors.h"

const char *rq_strerror(int code) {
    switch (code) {
    case RQ_OK: return "ok";
    case RQ_EIO: return "input/output error";
    case RQ_ENOSPC: return "no space left on device";
    case RQ_ENOENT: return "no such file";
    case RQ_EEXIST: return "file exists";
    case RQ_EBADF: return "bad file handle";
    case RQ_EINVAL: return "invalid argument";
    case RQ_ETRUNC: return "input truncated";
    case RQ_ECORRUPT: return "checksum or structure check failed";
    case RQ_ETOOBIG: return "length exceeds its maximum";
    case RQ_EBUSY: return "busy, retry later";
    case RQ_ENOMEM: return "capacity exhausted";
    case RQ_ERANGE: return "value out of range";
    case RQ_EMFILE: return "too many open files";
    case RQ_ECLOSED: return "closed";
    case RQ_ENOTLEADER: return "not the leader";
    case RQ_EVERSION: return "unsupported protocol version";
    case RQ_ETYPE: return "unknown message type";
    case RQ_ENOTOPIC: return "unknown topic or partition";
    case RQ_ETOPICEXISTS: return "topic exists";
    case RQ_ESEQUENCE: return "producer sequence out of order";
    case RQ_ETIMEOUT: return "timed out";
    case RQ_EFENCED: return "fenced: a newer generation or another member owns it";
    case RQ_ENOMEMBER: return "unknown group member: join again";
    default: return "unknown error";
    }
}
