// vswio: the packet I/O addon of vsw (see docs/DESIGN.md, "The native addon").
//
// Plain N-API (no node-addon-api), context-aware (NAPI_MODULE_INIT): it holds no global
// state, so it loads in the main thread and in any number of worker_threads.
//
// Every hot call (recv, send, poll) works on caller-owned typed arrays (no copies) and keeps
// its per-call syscall arrays (mmsghdr, iovec, control buffers, pollfd) on the stack: no heap
// allocation per call. Every offset/length coming from JavaScript is checked against the
// buffer bounds before any syscall touches memory.

#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>

// struct virtio_net_hdr of <linux/virtio_net.h> (that header does not compile as C++).
// Fields are in host byte order (the kernel uses little-endian virtio on LE hosts).
struct VnetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
#define VNET_F_NEEDS_CSUM 1

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef PACKET_QDISC_BYPASS
#define PACKET_QDISC_BYPASS 20
#endif
#ifndef TP_STATUS_VLAN_TPID_VALID
#define TP_STATUS_VLAN_TPID_VALID (1 << 6)
#endif

namespace {

constexpr int kKindPacket = 0;
constexpr int kKindTap = 1;
constexpr int kMaxBatch = 64;            // frames per recv call (max is capped to this)
constexpr int kSendChunk = 64;           // mmsghdr per sendmmsg call
constexpr int kHeadroom = 4;             // bytes before each received frame (VLAN re-insert)
constexpr int kVnetHdrLen = (int)sizeof(VnetHdr);  // 10
constexpr int kMinSlot = 64;
constexpr uint32_t kMaxPollFds = 4096;
constexpr int kSockBuf = 8 * 1024 * 1024;
constexpr uint8_t kFlagTruncated = 1;
constexpr uint8_t kFlagVlan = 2;

static_assert(kVnetHdrLen == 10, "virtio_net_hdr is 10 bytes");

// ---------------------------------------------------------------------------------------
// Errors

const char* ErrnoName(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* n = strerrorname_np(err);
  if (n != nullptr) return n;
#endif
  return "EUNKNOWN";
}

// Throws Error("<what>: <syscall>: <strerror>") with .code = "E..." and .errno = err.
void ThrowSys(napi_env env, const char* what, const char* syscall, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s: %s", what, syscall, strerror(err));
  napi_value jmsg, jcode, jerr, jerrno, jsys;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok) return;
  if (napi_create_string_utf8(env, ErrnoName(err), NAPI_AUTO_LENGTH, &jcode) != napi_ok) return;
  if (napi_create_error(env, jcode, jmsg, &jerr) != napi_ok) return;
  if (napi_create_int32(env, err, &jerrno) == napi_ok)
    napi_set_named_property(env, jerr, "errno", jerrno);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &jsys) == napi_ok)
    napi_set_named_property(env, jerr, "syscall", jsys);
  napi_throw(env, jerr);
}

void ThrowType(napi_env env, const char* fn, const char* what) {
  char msg[256];
  snprintf(msg, sizeof msg, "vswio.%s: %s", fn, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

void ThrowRange(napi_env env, const char* fn, const char* what) {
  char msg[256];
  snprintf(msg, sizeof msg, "vswio.%s: %s", fn, what);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
}

// ---------------------------------------------------------------------------------------
// Argument helpers. Each returns false after throwing.

bool GetArgs(napi_env env, napi_callback_info info, const char* fn, size_t want,
             napi_value* argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return false;
  if (argc < want) {
    char m[96];
    snprintf(m, sizeof m, "expected %zu arguments, got %zu", want, argc);
    ThrowType(env, fn, m);
    return false;
  }
  return true;
}

bool GetInt(napi_env env, napi_value v, const char* fn, const char* name, int32_t* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    char m[96];
    snprintf(m, sizeof m, "%s must be a number", name);
    ThrowType(env, fn, m);
    return false;
  }
  double d;
  napi_get_value_double(env, v, &d);
  if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != (double)(int32_t)d) {
    char m[96];
    snprintf(m, sizeof m, "%s must be a 32-bit integer", name);
    ThrowRange(env, fn, m);
    return false;
  }
  *out = (int32_t)d;
  return true;
}

bool GetFd(napi_env env, napi_value v, const char* fn, int* fd) {
  int32_t x;
  if (!GetInt(env, v, fn, "fd", &x)) return false;
  if (x < 0) {
    ThrowRange(env, fn, "fd must be >= 0");
    return false;
  }
  *fd = x;
  return true;
}

bool GetKind(napi_env env, napi_value v, const char* fn, int* kind) {
  int32_t x;
  if (!GetInt(env, v, fn, "kind", &x)) return false;
  if (x != kKindPacket && x != kKindTap) {
    ThrowRange(env, fn, "kind must be 0 (AF_PACKET) or 1 (TAP)");
    return false;
  }
  *kind = x;
  return true;
}

bool GetBool(napi_env env, napi_value v, const char* fn, const char* name, bool* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_boolean) {
    char m[96];
    snprintf(m, sizeof m, "%s must be a boolean", name);
    ThrowType(env, fn, m);
    return false;
  }
  napi_get_value_bool(env, v, out);
  return true;
}

// Copies a JS string into out (size IFNAMSIZ). Empty allowed only when allow_empty.
bool GetIfname(napi_env env, napi_value v, const char* fn, bool allow_empty, char* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    ThrowType(env, fn, "interface name must be a string");
    return false;
  }
  size_t len = 0;
  napi_get_value_string_utf8(env, v, nullptr, 0, &len);
  if (len >= IFNAMSIZ) {
    ThrowRange(env, fn, "interface name longer than 15 bytes");
    return false;
  }
  if (len == 0 && !allow_empty) {
    ThrowRange(env, fn, "interface name is empty");
    return false;
  }
  memset(out, 0, IFNAMSIZ);
  napi_get_value_string_utf8(env, v, out, IFNAMSIZ, &len);
  if (strlen(out) != len) {
    ThrowRange(env, fn, "interface name contains a NUL byte");
    return false;
  }
  return true;
}

// A typed array of the given element type; data already includes its byteOffset.
bool GetTyped(napi_env env, napi_value v, const char* fn, const char* name,
              napi_typedarray_type want, void** data, size_t* length) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) {
    char m[96];
    snprintf(m, sizeof m, "%s must be a %s", name,
             want == napi_uint8_array ? "Uint8Array" : "Int32Array");
    ThrowType(env, fn, m);
    return false;
  }
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, length, data, &ab, &off) != napi_ok ||
      type != want) {
    char m[96];
    snprintf(m, sizeof m, "%s must be a %s", name,
             want == napi_uint8_array ? "Uint8Array" : "Int32Array");
    ThrowType(env, fn, m);
    return false;
  }
  return true;
}

napi_value Int(napi_env env, int64_t x) {
  napi_value v;
  napi_create_int64(env, x, &v);
  return v;
}

napi_value Undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

void SetProp(napi_env env, napi_value obj, const char* key, napi_value v) {
  napi_set_named_property(env, obj, key, v);
}

napi_value Bool(napi_env env, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

int SetIntOpt(int fd, int level, int opt, int val) {
  return setsockopt(fd, level, opt, &val, sizeof val);
}

// ---------------------------------------------------------------------------------------
// openPacket(ifname, vnet) -> { fd, ifindex, vnet }

napi_value OpenPacket(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!GetArgs(env, info, "openPacket", 2, argv)) return nullptr;
  char name[IFNAMSIZ];
  bool want_vnet;
  if (!GetIfname(env, argv[0], "openPacket", false, name)) return nullptr;
  if (!GetBool(env, argv[1], "openPacket", "vnet", &want_vnet)) return nullptr;

  char what[64];
  snprintf(what, sizeof what, "openPacket(%s)", name);

  unsigned ifindex = if_nametoindex(name);
  if (ifindex == 0) {
    ThrowSys(env, what, "if_nametoindex", errno ? errno : ENODEV);
    return nullptr;
  }
  // Protocol 0: the socket is not hooked to any traffic until bind() below names the
  // interface, so no frame of another interface slips in.
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowSys(env, what, "socket", errno);
    return nullptr;
  }
  bool vnet = false;
  if (want_vnet) vnet = SetIntOpt(fd, SOL_PACKET, PACKET_VNET_HDR, 1) == 0;
  if (SetIntOpt(fd, SOL_PACKET, PACKET_AUXDATA, 1) != 0) {
    int e = errno;
    close(fd);
    ThrowSys(env, what, "setsockopt(PACKET_AUXDATA)", e);
    return nullptr;
  }
  (void)SetIntOpt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);  // absent before 4.20
#ifndef VSWIO_NO_QDISC_BYPASS  // (a build switch only to measure the difference)
  (void)SetIntOpt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1);
#endif
  if (SetIntOpt(fd, SOL_SOCKET, SO_RCVBUFFORCE, kSockBuf) != 0)
    (void)SetIntOpt(fd, SOL_SOCKET, SO_RCVBUF, kSockBuf);
  if (SetIntOpt(fd, SOL_SOCKET, SO_SNDBUFFORCE, kSockBuf) != 0)
    (void)SetIntOpt(fd, SOL_SOCKET, SO_SNDBUF, kSockBuf);

  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)ifindex;
  if (bind(fd, (struct sockaddr*)&sll, sizeof sll) != 0) {
    int e = errno;
    close(fd);
    ThrowSys(env, what, "bind", e);
    return nullptr;
  }
  // Drain whatever might have been queued before the bind (nothing, with protocol 0, but
  // cheap; bounded so live traffic cannot keep us here), and clear the pending ENETDOWN
  // that bind() leaves when the interface is down (else poll() reports POLLERR).
  char scratch[64];
  for (int i = 0; i < 1024; i++) {
    ssize_t r = recv(fd, scratch, sizeof scratch, MSG_DONTWAIT | MSG_TRUNC);
    if (r < 0 && errno != EINTR && errno != ENETDOWN) break;
  }
  int soerr = 0;
  socklen_t soerrlen = sizeof soerr;
  (void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &soerrlen);

  napi_value obj;
  napi_create_object(env, &obj);
  SetProp(env, obj, "fd", Int(env, fd));
  SetProp(env, obj, "ifindex", Int(env, ifindex));
  SetProp(env, obj, "vnet", Bool(env, vnet));
  return obj;
}

// ---------------------------------------------------------------------------------------
// openTap(name, vnet) -> { fd, name, vnet }

napi_value OpenTap(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!GetArgs(env, info, "openTap", 2, argv)) return nullptr;
  char name[IFNAMSIZ];
  bool want_vnet;
  if (!GetIfname(env, argv[0], "openTap", true, name)) return nullptr;
  if (!GetBool(env, argv[1], "openTap", "vnet", &want_vnet)) return nullptr;

  char what[64];
  snprintf(what, sizeof what, "openTap(%s)", name);

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    ThrowSys(env, what, "open(/dev/net/tun)", errno);
    return nullptr;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, IFNAMSIZ);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (want_vnet ? IFF_VNET_HDR : 0);
  bool vnet = want_vnet;
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    int e = errno;
    if (want_vnet && e == EINVAL) {  // a kernel without IFF_VNET_HDR: plain TAP
      memset(&ifr, 0, sizeof ifr);
      memcpy(ifr.ifr_name, name, IFNAMSIZ);
      ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
      vnet = false;
      if (ioctl(fd, TUNSETIFF, &ifr) != 0) e = errno; else e = 0;
    }
    if (e != 0) {
      close(fd);
      ThrowSys(env, what, "TUNSETIFF", e);
      return nullptr;
    }
  }
  if (vnet) {
    int sz = kVnetHdrLen;
    (void)ioctl(fd, TUNSETVNETHDRSZ, &sz);  // 10 is the default anyway
    // Offloads we accept on frames the kernel hands us. If refused, the TAP keeps its vnet
    // header (frames we write may still carry NEEDS_CSUM/GSO); the kernel then finishes
    // checksums and segments before handing frames to us.
    unsigned off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    if (ioctl(fd, TUNSETOFFLOAD, off) != 0) (void)ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM);
  }
  ifr.ifr_name[IFNAMSIZ - 1] = 0;

  napi_value obj, jname;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &jname);
  SetProp(env, obj, "fd", Int(env, fd));
  SetProp(env, obj, "name", jname);
  SetProp(env, obj, "vnet", Bool(env, vnet));
  return obj;
}

// ---------------------------------------------------------------------------------------
// close(fd)

napi_value Close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!GetArgs(env, info, "close", 1, argv) || !GetFd(env, argv[0], "close", &fd))
    return nullptr;
  if (close(fd) != 0 && errno != EINTR) {  // EINTR: Linux has closed the fd anyway
    int e = errno;
    char what[48];
    snprintf(what, sizeof what, "close(fd %d)", fd);
    ThrowSys(env, what, "close", e);
    return nullptr;
  }
  return Undefined(env);
}

// ---------------------------------------------------------------------------------------
// recv(fd, kind, vnet, buf, slot, max, offs, lens, flags) -> count

// Re-inserts the VLAN tag that the kernel moved into auxdata. The frame (vnet header first
// when vnet) was received at slot+4 with length len; afterwards it starts at the slot.
inline void ReinsertVlan(uint8_t* slotp, bool vnet, uint16_t tpid, uint16_t tci) {
  const int hdr = vnet ? kVnetHdrLen : 0;
  memmove(slotp, slotp + kHeadroom, (size_t)hdr + 12);
  uint8_t* tag = slotp + hdr + 12;
  tag[0] = (uint8_t)(tpid >> 8);
  tag[1] = (uint8_t)tpid;
  tag[2] = (uint8_t)(tci >> 8);
  tag[3] = (uint8_t)tci;
  if (vnet) {
    VnetHdr h;
    memcpy(&h, slotp, sizeof h);
    if (h.flags & VNET_F_NEEDS_CSUM) h.csum_start = (uint16_t)(h.csum_start + 4);
    if (h.hdr_len != 0) h.hdr_len = (uint16_t)(h.hdr_len + 4);
    memcpy(slotp, &h, sizeof h);
  }
}

napi_value Recv(napi_env env, napi_callback_info info) {
  static const char* fn = "recv";
  napi_value argv[9];
  if (!GetArgs(env, info, fn, 9, argv)) return nullptr;
  int fd, kind;
  bool vnet;
  int32_t slot, max;
  void *bufp, *offsp, *lensp, *flagsp;
  size_t buflen, offslen, lenslen, flagslen;
  if (!GetFd(env, argv[0], fn, &fd) || !GetKind(env, argv[1], fn, &kind) ||
      !GetBool(env, argv[2], fn, "vnet", &vnet) ||
      !GetTyped(env, argv[3], fn, "buf", napi_uint8_array, &bufp, &buflen) ||
      !GetInt(env, argv[4], fn, "slot", &slot) || !GetInt(env, argv[5], fn, "max", &max) ||
      !GetTyped(env, argv[6], fn, "offs", napi_int32_array, &offsp, &offslen) ||
      !GetTyped(env, argv[7], fn, "lens", napi_int32_array, &lensp, &lenslen) ||
      !GetTyped(env, argv[8], fn, "flags", napi_uint8_array, &flagsp, &flagslen))
    return nullptr;
  if (slot < kMinSlot) {
    ThrowRange(env, fn, "slot must be >= 64");
    return nullptr;
  }
  if (max < 1) {
    ThrowRange(env, fn, "max must be >= 1");
    return nullptr;
  }
  if (max > kMaxBatch) max = kMaxBatch;
  if ((uint64_t)max * (uint64_t)slot > (uint64_t)buflen) {
    ThrowRange(env, fn, "buf is smaller than max * slot");
    return nullptr;
  }
  if ((uint64_t)max * (uint64_t)slot > (uint64_t)INT32_MAX) {
    ThrowRange(env, fn, "max * slot exceeds 2^31-1");
    return nullptr;
  }
  if (offslen < (size_t)max || lenslen < (size_t)max || flagslen < (size_t)max) {
    ThrowRange(env, fn, "offs, lens and flags must have at least max elements");
    return nullptr;
  }
  uint8_t* buf = (uint8_t*)bufp;
  int32_t* offs = (int32_t*)offsp;
  int32_t* lens = (int32_t*)lensp;
  uint8_t* flags = (uint8_t*)flagsp;
  const size_t iolen = (size_t)slot - kHeadroom;

  if (kind == kKindTap) {
    int n = 0;
    while (n < max) {
      uint8_t* p = buf + (size_t)n * slot + kHeadroom;
      ssize_t r = read(fd, p, iolen);
      if (r < 0) {
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EWOULDBLOCK) break;
        if (e == EFAULT || e == EINVAL) {
          // tun could not fit the frame into the slot (older kernels): the frame is gone.
          // Report it as a truncated frame so the caller counts it.
          offs[n] = (int32_t)((size_t)n * slot + kHeadroom);
          lens[n] = 0;
          flags[n] = kFlagTruncated;
          n++;
          continue;
        }
        if (n > 0) break;  // report the frames we have; the error comes back next call
        char what[48];
        snprintf(what, sizeof what, "recv(fd %d)", fd);
        ThrowSys(env, what, "read", e);
        return nullptr;
      }
      // tun cuts a frame larger than the buffer silently and returns the buffer size: a
      // frame that fills the whole slot counts as truncated (with the default SLOT no
      // complete frame can: 10 + 14 + 65535 < 65596).
      offs[n] = (int32_t)((size_t)n * slot + kHeadroom);
      lens[n] = (int32_t)r;
      flags[n] = (size_t)r >= iolen ? kFlagTruncated : 0;
      n++;
    }
    return Int(env, n);
  }

  // AF_PACKET: one recvmmsg.
  union Ctl {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
  };
  struct mmsghdr msgs[kMaxBatch];
  struct iovec iov[kMaxBatch];
  Ctl ctl[kMaxBatch];
  for (int i = 0; i < max; i++) {
    iov[i].iov_base = buf + (size_t)i * slot + kHeadroom;
    iov[i].iov_len = iolen;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_control = ctl[i].buf;
    msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
  }
  int n;
  for (;;) {
    n = recvmmsg(fd, msgs, (unsigned)max, MSG_DONTWAIT | MSG_TRUNC, nullptr);
    if (n >= 0) break;
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK || e == ENETDOWN) return Int(env, 0);
    char what[48];
    snprintf(what, sizeof what, "recv(fd %d)", fd);
    ThrowSys(env, what, "recvmmsg", e);
    return nullptr;
  }
  for (int i = 0; i < n; i++) {
    uint8_t* slotp = buf + (size_t)i * slot;
    size_t len = msgs[i].msg_len;
    uint8_t fl = 0;
    if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || len > iolen) {
      fl |= kFlagTruncated;
      if (len > iolen) len = iolen;
    }
    bool tagged = false;
    uint16_t tci = 0, tpid = ETH_P_8021Q;
    struct msghdr* mh = &msgs[i].msg_hdr;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(mh); c != nullptr; c = CMSG_NXTHDR(mh, c)) {
      if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
      if (c->cmsg_len < CMSG_LEN(sizeof(struct tpacket_auxdata))) continue;
      struct tpacket_auxdata aux;
      memcpy(&aux, CMSG_DATA(c), sizeof aux);
      if (aux.tp_status & TP_STATUS_VLAN_VALID) {
        tagged = true;
        tci = aux.tp_vlan_tci;
        if ((aux.tp_status & TP_STATUS_VLAN_TPID_VALID) && aux.tp_vlan_tpid != 0)
          tpid = aux.tp_vlan_tpid;
      }
    }
    const size_t hdr = vnet ? (size_t)kVnetHdrLen : 0;
    if (tagged && len >= hdr + 12) {
      ReinsertVlan(slotp, vnet, tpid, tci);
      fl |= kFlagVlan;
      offs[i] = (int32_t)((size_t)i * slot);
      lens[i] = (int32_t)(len + 4);
    } else {
      offs[i] = (int32_t)((size_t)i * slot + kHeadroom);
      lens[i] = (int32_t)len;
    }
    flags[i] = fl;
  }
  return Int(env, n);
}

// ---------------------------------------------------------------------------------------
// send(fd, kind, buf, offs, lens, count) -> sent

// errno values meaning "the interface went away / is down": stop, the rest are tx drops.
inline bool IsGone(int e) {
  return e == ENXIO || e == ENETDOWN || e == EIO || e == ENODEV || e == EBADFD;
}
// errno values about one frame's contents: drop that frame, go on with the next.
inline bool IsFrameError(int e) { return e == EMSGSIZE || e == EINVAL; }

napi_value Send(napi_env env, napi_callback_info info) {
  static const char* fn = "send";
  napi_value argv[6];
  if (!GetArgs(env, info, fn, 6, argv)) return nullptr;
  int fd, kind;
  int32_t count;
  void *bufp, *offsp, *lensp;
  size_t buflen, offslen, lenslen;
  if (!GetFd(env, argv[0], fn, &fd) || !GetKind(env, argv[1], fn, &kind) ||
      !GetTyped(env, argv[2], fn, "buf", napi_uint8_array, &bufp, &buflen) ||
      !GetTyped(env, argv[3], fn, "offs", napi_int32_array, &offsp, &offslen) ||
      !GetTyped(env, argv[4], fn, "lens", napi_int32_array, &lensp, &lenslen) ||
      !GetInt(env, argv[5], fn, "count", &count))
    return nullptr;
  if (count < 0 || (size_t)count > offslen || (size_t)count > lenslen) {
    ThrowRange(env, fn, "count must be >= 0 and <= offs.length and lens.length");
    return nullptr;
  }
  uint8_t* buf = (uint8_t*)bufp;
  const int32_t* offs = (const int32_t*)offsp;
  const int32_t* lens = (const int32_t*)lensp;
  for (int32_t j = 0; j < count; j++) {
    if (offs[j] < 0 || lens[j] <= 0 || (uint64_t)offs[j] + (uint64_t)lens[j] > buflen) {
      char m[128];
      snprintf(m, sizeof m, "frame %d: offs %d + lens %d is outside buf (length %zu)", j,
               offs[j], lens[j], buflen);
      ThrowRange(env, fn, m);
      return nullptr;
    }
  }
  char what[48];
  int sent = 0;

  if (kind == kKindTap) {
    for (int32_t j = 0; j < count;) {
      ssize_t r = write(fd, buf + offs[j], (size_t)lens[j]);
      if (r >= 0) {
        sent++;
        j++;
        continue;
      }
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || IsGone(e)) break;
      if (IsFrameError(e) || e == EFAULT) {
        j++;
        continue;
      }
      snprintf(what, sizeof what, "send(fd %d)", fd);
      ThrowSys(env, what, "write", e);
      return nullptr;
    }
    return Int(env, sent);
  }

  struct mmsghdr msgs[kSendChunk];
  struct iovec iov[kSendChunk];
  int32_t j = 0;
  while (j < count) {
    int n = count - j < kSendChunk ? count - j : kSendChunk;
    for (int i = 0; i < n; i++) {
      iov[i].iov_base = buf + offs[j + i];
      iov[i].iov_len = (size_t)lens[j + i];
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int done = 0;
    while (done < n) {
      int r = sendmmsg(fd, msgs + done, (unsigned)(n - done), MSG_DONTWAIT);
      if (r > 0) {
        done += r;
        sent += r;
        continue;
      }
      int e = r == 0 ? EAGAIN : errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || IsGone(e)) return Int(env, sent);
      if (IsFrameError(e)) {  // the kernel refused msgs[done]: drop it
        done++;
        continue;
      }
      snprintf(what, sizeof what, "send(fd %d)", fd);
      ThrowSys(env, what, "sendmmsg", e);
      return nullptr;
    }
    j += n;
  }
  return Int(env, sent);
}

// ---------------------------------------------------------------------------------------
// poll(fds, n, timeoutMs, revents) -> ready

napi_value Poll(napi_env env, napi_callback_info info) {
  static const char* fn = "poll";
  napi_value argv[4];
  if (!GetArgs(env, info, fn, 4, argv)) return nullptr;
  void *fdsp, *revp;
  size_t fdslen, revlen;
  int32_t n, timeout;
  if (!GetTyped(env, argv[0], fn, "fds", napi_int32_array, &fdsp, &fdslen) ||
      !GetInt(env, argv[1], fn, "n", &n) || !GetInt(env, argv[2], fn, "timeoutMs", &timeout) ||
      !GetTyped(env, argv[3], fn, "revents", napi_int32_array, &revp, &revlen))
    return nullptr;
  if (n < 0 || (size_t)n > fdslen || (size_t)n > revlen || (uint32_t)n > kMaxPollFds) {
    ThrowRange(env, fn, "n must be in [0, min(fds.length, revents.length, 4096)]");
    return nullptr;
  }
  if (timeout < -1) timeout = -1;
  const int32_t* fds = (const int32_t*)fdsp;
  int32_t* rev = (int32_t*)revp;
  struct pollfd pfd[kMaxPollFds];
  for (int i = 0; i < n; i++) {
    pfd[i].fd = fds[i];
    pfd[i].events = POLLIN;
    pfd[i].revents = 0;
  }
  int r = poll(pfd, (nfds_t)n, timeout);
  if (r < 0) {
    int e = errno;
    for (int i = 0; i < n; i++) rev[i] = 0;
    if (e == EINTR) return Int(env, 0);
    ThrowSys(env, "poll", "poll", e);
    return nullptr;
  }
  for (int i = 0; i < n; i++) rev[i] = pfd[i].revents;
  return Int(env, r);
}

// ---------------------------------------------------------------------------------------
// eventfd(), eventfdSignal(fd), eventfdDrain(fd)

napi_value EventFd(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    ThrowSys(env, "eventfd", "eventfd", errno);
    return nullptr;
  }
  return Int(env, fd);
}

napi_value EventFdSignal(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!GetArgs(env, info, "eventfdSignal", 1, argv) ||
      !GetFd(env, argv[0], "eventfdSignal", &fd))
    return nullptr;
  uint64_t one = 1;
  for (;;) {
    if (write(fd, &one, sizeof one) == (ssize_t)sizeof one) break;
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN) break;  // counter saturated: the reader is signalled already
    char what[48];
    snprintf(what, sizeof what, "eventfdSignal(fd %d)", fd);
    ThrowSys(env, what, "write", e);
    return nullptr;
  }
  return Undefined(env);
}

napi_value EventFdDrain(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!GetArgs(env, info, "eventfdDrain", 1, argv) || !GetFd(env, argv[0], "eventfdDrain", &fd))
    return nullptr;
  uint64_t v;
  for (;;) {
    if (read(fd, &v, sizeof v) == (ssize_t)sizeof v) continue;
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN) break;
    char what[48];
    snprintf(what, sizeof what, "eventfdDrain(fd %d)", fd);
    ThrowSys(env, what, "read", e);
    return nullptr;
  }
  return Undefined(env);
}

// ---------------------------------------------------------------------------------------
// ifindex(name), setMac(ifname, mac)

napi_value IfIndex(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!GetArgs(env, info, "ifindex", 1, argv)) return nullptr;
  napi_valuetype t;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string) {
    ThrowType(env, "ifindex", "interface name must be a string");
    return nullptr;
  }
  char name[IFNAMSIZ + 1];
  size_t len = 0;
  napi_get_value_string_utf8(env, argv[0], nullptr, 0, &len);
  if (len == 0 || len >= IFNAMSIZ) return Int(env, 0);  // no such interface can exist
  napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len);
  if (strlen(name) != len) return Int(env, 0);
  return Int(env, if_nametoindex(name));
}

napi_value SetMac(napi_env env, napi_callback_info info) {
  static const char* fn = "setMac";
  napi_value argv[2];
  if (!GetArgs(env, info, fn, 2, argv)) return nullptr;
  char name[IFNAMSIZ];
  void* macp;
  size_t maclen;
  if (!GetIfname(env, argv[0], fn, false, name) ||
      !GetTyped(env, argv[1], fn, "mac", napi_uint8_array, &macp, &maclen))
    return nullptr;
  if (maclen != 6) {
    ThrowRange(env, fn, "mac must have 6 bytes");
    return nullptr;
  }
  char what[64];
  snprintf(what, sizeof what, "setMac(%s)", name);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    ThrowSys(env, what, "socket", errno);
    return nullptr;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, IFNAMSIZ);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(ifr.ifr_hwaddr.sa_data, macp, 6);
  if (ioctl(s, SIOCSIFHWADDR, &ifr) != 0) {
    int e = errno;
    close(s);
    ThrowSys(env, what, "SIOCSIFHWADDR", e);
    return nullptr;
  }
  close(s);
  return Undefined(env);
}

}  // namespace

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  const napi_property_attributes a = napi_enumerable;
  napi_property_descriptor props[] = {
      {"openPacket", nullptr, OpenPacket, nullptr, nullptr, nullptr, a, nullptr},
      {"openTap", nullptr, OpenTap, nullptr, nullptr, nullptr, a, nullptr},
      {"close", nullptr, Close, nullptr, nullptr, nullptr, a, nullptr},
      {"recv", nullptr, Recv, nullptr, nullptr, nullptr, a, nullptr},
      {"send", nullptr, Send, nullptr, nullptr, nullptr, a, nullptr},
      {"poll", nullptr, Poll, nullptr, nullptr, nullptr, a, nullptr},
      {"eventfd", nullptr, EventFd, nullptr, nullptr, nullptr, a, nullptr},
      {"eventfdSignal", nullptr, EventFdSignal, nullptr, nullptr, nullptr, a, nullptr},
      {"eventfdDrain", nullptr, EventFdDrain, nullptr, nullptr, nullptr, a, nullptr},
      {"ifindex", nullptr, IfIndex, nullptr, nullptr, nullptr, a, nullptr},
      {"setMac", nullptr, SetMac, nullptr, nullptr, nullptr, a, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return nullptr;
  return exports;
}
