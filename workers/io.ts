// Typed wrapper of the native packet I/O addon (native/vswio.cc, built by node-gyp into
// build/Release/vswio.node). See docs/DESIGN.md, "The native addon". This file is the only
// place that loads the addon.
//
// Conventions shared by every call:
// - fds are plain integers, process-wide: any thread may send on any fd.
// - Errors from syscalls are thrown as `Error` with `message` "<call>(<ifname or fd N>):
//   <syscall>: <strerror>", `code` the errno name ("ENODEV", "EBADF", ...), `errno` the number
//   and `syscall`. Bad arguments (wrong types, offsets outside the buffer, ...) throw
//   TypeError/RangeError with code ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE before any syscall
//   touches memory.
// - virtio_net_hdr (10 bytes, VNET_HDR_LEN) fields are in host byte order (little-endian on
//   x86/arm64): flags u8 @0, gso_type u8 @1, hdr_len u16 @2, gso_size u16 @4,
//   csum_start u16 @6, csum_offset u16 @8. csum_start counts from the start of the Ethernet
//   frame (after the vnet header).

import * as fs from 'node:fs';
import * as path from 'node:path';

/** `kind` of an fd for recv/send: an AF_PACKET socket. */
export const KIND_PACKET = 0;
/** `kind` of an fd for recv/send: a TAP file descriptor. */
export const KIND_TAP = 1;
/** Size of struct virtio_net_hdr, which starts every frame of a vnet port (defined in wire/vnet.ts). */
export { VNET_HDR_LEN } from '../dataplane/wire/vnet';
/** Bytes per receive slot: a 64 KiB (GSO) frame + vnet header + VLAN tag, rounded. */
export const SLOT = 65536 + 64;
/** A frame is received this many bytes into its slot, so a VLAN tag can be re-inserted. */
export const RX_HEADROOM = 4;
/** recv() returns at most this many frames per call (larger `max` is capped). */
export const MAX_BATCH = 64;
/** recv() flags[i] bit: the frame was larger than the slot and is cut (drop it). */
export const FLAG_TRUNCATED = 1;
/** recv() flags[i] bit: a VLAN tag from PACKET_AUXDATA was re-inserted (csum_start +4). */
export const FLAG_VLAN = 2;
/**
 * recv() flags[i] bit, always with FLAG_TRUNCATED: the kernel cut the frame because the
 * socket's receive queue was full (a frame too big for a ring frame whose whole copy found
 * no room): a receive-queue-full drop rather than a slot too small.
 */
export const FLAG_CUT = 4;
/**
 * recvUdp() flags[i] bit: a datagram split from a UDP GRO buffer, not its first: it has no
 * headroom of its own (the bytes before its VXLAN header are the previous datagram's tail).
 */
export const FLAG_PACKED = 8;
/** recvUdp() entries per message at most (a GRO'd buffer of up to 64 datagrams): arrays of MAX_BATCH * this take a full batch. */
export const UDP_GRO_MAX = 64;

/**
 * Default bytes per receive-ring frame: 76 B of headers (vnet included), so frames of up to
 * 1972 B (MTU 1500 + VLAN) are copied out of the ring; bigger ones come from the socket queue.
 */
export const RING_FRAME_SIZE = 2048;
/** Default frames per receive ring (4 MiB per AF_PACKET port with RING_FRAME_SIZE; the addon's kRingFramesDefault, vsw daemon --rx-ring). */
export const RING_FRAMES = 2048;
/** The most frames --rx-ring takes: the addon's 64 MiB a ring (kRingBytesMax) at RING_FRAME_SIZE. */
export const RING_FRAMES_MAX = (64 << 20) / RING_FRAME_SIZE;
/** The fewest (the addon's kRingFramesMin). */
export const RING_FRAMES_MIN = 64;

/** The poll(2) revents bits that matter to callers. */
export const POLLIN = 0x001;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;

/** Receive ring geometry for openPacket (defaults: RING_FRAMES x RING_FRAME_SIZE). */
export interface RingOptions {
  frames?: number;
  frameSize?: number;
}

/** `kind` of a VXLAN underlay socket pair (openUdp): recvUdp on rx, sendUdp on tx. */
export const KIND_UDP = 2;
/** recvUdp() writes datagram i this many bytes into its slot (room for a vnet header + VLAN tag after decapsulation). */
export const UDP_RX_HEADROOM = 8;

/** The native addon's interface (docs/DESIGN.md). */
export interface Io {
  /**
   * Opens an AF_PACKET SOCK_RAW socket bound to `ifname` (created with protocol 0, then
   * bound with ETH_P_ALL + ifindex, so no other interface's frames slip in), non-blocking,
   * close-on-exec, with PACKET_AUXDATA, PACKET_IGNORE_OUTGOING (not QDISC_BYPASS: taps must see tx) and
   * 8 MB SO_RCVBUF/SO_SNDBUF. With `vnet`, PACKET_VNET_HDR is set: every frame received and
   * sent starts with a 10-byte virtio_net_hdr; the returned `vnet` is false if the kernel
   * refused it. Throws e.g. "openPacket(veth1): if_nametoindex: No such device".
   *
   * With `ring` (default true) the socket gets a TPACKET_V2 receive ring, mmap'd: by
   * default 2048 frames of 2048 bytes (4 MiB of kernel memory; `vsw daemon --rx-ring`); `ring` may
   * be an object to choose the geometry ({ frames: 64..65536, frameSize: a power of two in
   * 256..65536, frames * frameSize <= 64 MiB }, RangeError otherwise), and the environment
   * variables VSWIO_RING_FRAMES / VSWIO_RING_FRAME_SIZE change the defaults (tuning; ignored
   * when invalid). A ring frame holds Ethernet frames of up to frameSize - 76 bytes (the 76
   * are the ring's header and the vnet header); bigger ones (GSO, jumbo) go whole to the
   * socket's receive queue (PACKET_COPY_THRESH) and recv() reads them at their place in
   * the ring. Callers see no difference in recv(). The returned `ring` says whether the
   * ring is in use (false: the kernel refused it, `ring` was false, or fd >= 65536; recv()
   * then uses recvmmsg), with its real geometry (0 without). The ring belongs to the fd:
   * close the fd with close() below (which unmaps it), never otherwise -- the mapping would
   * keep the socket alive.
   * Kernel caveat (tpacket_rcv, as in the 6.x sources read): with a ring and vnet headers,
   * a frame whose virtio_net_hdr the kernel cannot build (a GSO type other than TCP or
   * UDP_L4, e.g. SCTP GSO; SCTP is not available on this machine's kernel) leaves its ring
   * frame marked busy in the kernel, and every later frame is dropped (packetStats: drops
   * == packets, recv() idle) until the fd is closed and reopened. Not reproduced here.
   */
  openPacket(ifname: string, vnet: boolean, ring?: boolean | RingOptions): {
    fd: number; ifindex: number; vnet: boolean;
    ring: boolean; ringFrames: number; ringFrameSize: number;
  };
  /**
   * Creates (or attaches to) TAP `name` ('' = kernel-chosen tapN): IFF_TAP|IFF_NO_PI,
   * non-blocking; with `vnet`, IFF_VNET_HDR, TUNSETVNETHDRSZ 10 and TUNSETOFFLOAD
   * (CSUM|TSO4|TSO6|TSO_ECN; if the kernel refuses, CSUM only, else none: the TAP keeps
   * its vnet header either way, the kernel then just finishes checksums/segments before
   * handing frames to us). Returns the real interface name. The TAP lives as long as the fd.
   */
  openTap(name: string, vnet: boolean): { fd: number; name: string; vnet: boolean };
  /** Unmaps the fd's receive ring if it has one, then close(2). Throws on EBADF. */
  close(fd: number): void;
  /**
   * Receives up to `max` (capped at MAX_BATCH) frames. Slot i is buf[i*slot, (i+1)*slot);
   * the frame (vnet header first when `vnet`) is at offs[i], length lens[i]:
   * offs[i] = i*slot + RX_HEADROOM normally, i*slot when a VLAN tag was re-inserted.
   * flags[i]:
   * - FLAG_TRUNCATED: drop this frame. It was larger than slot-4 (lens[i] is what fitted);
   *   or the kernel cut it because the receive queue was full (then FLAG_CUT too); or the
   *   kernel could not describe it in a virtio_net_hdr (a GSO type it does not support)
   *   and dropped it (lens[i] may be 0). On TAP, where the kernel cuts silently: any frame
   *   filling all slot-4 bytes (lens[i] may be 0).
   * - FLAG_VLAN: the tag from PACKET_AUXDATA / the ring frame header was put back after the
   *   MACs; csum_start and a non-zero hdr_len moved by 4.
   * Returns the count, 0 when nothing is waiting (and, on AF_PACKET, when the socket reports
   * ENETDOWN: that also clears its POLLERR).
   * kind: KIND_PACKET = with a ring (openPacket), the ready ring frames are copied out and
   * given back at once -- no syscall, except one recvmmsg for the frames too big for a ring
   * frame (read whole from the socket queue, in order) and a getsockopt(SO_ERROR) when
   * nothing is ready; without a ring, one recvmmsg. KIND_TAP = read() until EAGAIN or max.
   * `vnet` must be what openPacket/openTap returned.
   * Threads: any thread may call recv on any fd, but never two at once on the same fd (the
   * ring's read position is plain memory: serialize with a lock when a port is shared), and
   * never concurrently with close(fd).
   * Requires slot >= 64, max*slot <= buf.length, offs/lens/flags >= max elements.
   * Throws on other errors (e.g. EBADFD from a TAP whose interface was deleted).
   */
  recv(fd: number, kind: number, vnet: boolean, buf: Uint8Array, slot: number, max: number,
       offs: Int32Array, lens: Int32Array, flags: Uint8Array): number;
  /**
   * Sends frames j < count: buf[offs[j], offs[j]+lens[j]) (zero copy; sendmmsg on AF_PACKET,
   * write per frame on TAP). Returns how many were handed to the kernel; the caller counts
   * count - sent as tx drops. It stops early (returns fewer) when the socket is full
   * (EAGAIN/ENOBUFS) or the interface is down/gone (ENETDOWN/ENXIO/ENODEV/EIO/EBADFD);
   * a frame the kernel refuses (EMSGSIZE/EINVAL, e.g. larger than the MTU) is skipped and
   * sending goes on. Throws on other errors (EBADF, ENOTSOCK, ...) and, before sending
   * anything, when any frame lies outside buf or lens[j] <= 0.
   */
  send(fd: number, kind: number, buf: Uint8Array, offs: Int32Array, lens: Int32Array,
       count: number): number;
  /**
   * The kernel's receive counters of an AF_PACKET socket (getsockopt PACKET_STATISTICS),
   * as deltas since the previous packetStats call on that fd (the kernel clears them on
   * each read; nothing else in vsw reads them). `packets`: frames that reached the socket,
   * dropped ones included; `drops`: frames the kernel dropped because the receive ring or
   * queue was full (the reader did not keep up) -- vsw's rx-queue-full. Not in `ss -0 -m`
   * ("d" there is sk_drops, which ring-full drops do not touch). A TAP fd: zeros.
   * Throws on EBADF.
   */
  packetStats(fd: number): { packets: number; drops: number };
  /**
   * poll(2) for POLLIN on fds[0..n) (n <= 4096); revents[i] gets the raw revents
   * (POLLERR/POLLHUP/POLLNVAL can show up without POLLIN). timeoutMs -1 = forever.
   * On a packet socket with a ring, POLLIN means the ring's last filled frame is waiting
   * (recv() may still return 0 for an instant while an earlier frame is being filled).
   * Returns the number of ready fds; 0 on timeout or EINTR.
   */
  poll(fds: Int32Array, n: number, timeoutMs: number, revents: Int32Array, spinUs?: number): number;
  /** A non-blocking, close-on-exec eventfd (counter mode). */
  eventfd(): number;
  /** Adds 1 to the eventfd (makes it readable). */
  eventfdSignal(fd: number): void;
  /** Reads the eventfd until EAGAIN (makes it not readable). */
  eventfdDrain(fd: number): void;
  /** if_nametoindex; 0 when there is no such interface (or the name is invalid). */
  ifindex(name: string): number;
  /** SIOCSIFHWADDR: sets the interface's MAC (mac: 6 bytes). A TAP's MAC must be fixed. */
  setMac(ifname: string, mac: Uint8Array): void;
  // --- VXLAN underlay (docs/VXLAN.md) ---
  /**
   * Opens the two sockets of a VXLAN tunnel endpoint: `rx`, a UDP socket bound to
   * localIp:port (non-blocking, 8 MB SO_RCVBUF), and `tx`, a raw IPPROTO_UDP socket bound to
   * localIp whose datagrams start with the UDP header the caller writes (the kernel adds the
   * IP header, routes and resolves the next hop); a BPF filter keeps `tx` from receiving.
   * `rx` has UDP_GRO (recvUdp splits GRO'd buffers). `pool`: up to 8 UDP sockets bound to
   * localIp with source ports 49152 up (the first free), for sendVxlan (UDP GSO); when
   * empty, `tx` sends.
   * Throws e.g. "openUdp(10.0.0.9:4789): bind: Cannot assign requested address"
   * (code EADDRNOTAVAIL: the address is not on this host) or code EADDRINUSE.
   */
  openUdp(localIp: string, port: number): { rx: number; tx: number; pool?: number[] };
  /**
   * Sends VXLAN datagrams through openUdp's `pool` of UDP sockets (source ports 49152 up):
   * entry j is buf[offs[j], +lens[j]) laid out as for sendUdp (the UDP header first, of
   * which only the source port is read: it picks socks[sport % socks.length]) to
   * addrs[j]:dport. segs[j] > 0: the bytes after the UDP header are datagrams of segs[j]
   * bytes back to back (the last may be shorter), sent as one sendmsg with UDP_SEGMENT (UDP
   * GSO), or one by one where the device cannot. Returns how many entries the kernel took.
   */
  sendVxlan?(socks: Int32Array, buf: Uint8Array, offs: Int32Array, lens: Int32Array, addrs: Int32Array,
    segs: Int32Array, count: number, dport: number): number;
  /**
   * Receives up to `max` (capped at MAX_BATCH) datagrams with recvmmsg: datagram i at
   * offs[i] = i*slot + UDP_RX_HEADROOM, lens[i] bytes, its IPv4 source address (host
   * order, as a signed 32-bit number) in addrs[i]; flags[i] = FLAG_TRUNCATED when it was
   * larger than the slot. Returns the count, 0 when nothing is waiting.
   */
  recvUdp(fd: number, buf: Uint8Array, slot: number, max: number, offs: Int32Array, lens: Int32Array,
    flags: Uint8Array, addrs: Int32Array): number;
  /**
   * Sends datagrams j < count, buf[offs[j], offs[j]+lens[j]), to addrs[j] (IPv4, host
   * order), with sendmmsg. On openUdp's `tx` each starts with its UDP header. Returns how
   * many the kernel took: fewer when the socket is full; one the kernel refuses on its own
   * (no route, too big, filtered) is skipped. Throws when a datagram lies outside buf.
   */
  sendUdp(fd: number, buf: Uint8Array, offs: Int32Array, lens: Int32Array, addrs: Int32Array, count: number): number;
  /**
   * fold(onesSum(buf, off, len, initial)) of dataplane/wire/checksum.ts, in C (VXLAN
   * segmentation checksums every segment it makes). Throws a RangeError outside buf.
   */
  onesSum?(buf: Uint8Array, off: number, len: number, initial: number): number;
}

const ADDON_REL = path.join('build', 'Release', 'vswio.node');

let cached: Io | undefined;

/** Finds build/Release/vswio.node walking up from this file's directory. */
export function findAddon(start: string = __dirname): string | undefined {
  let dir = start;
  for (;;) {
    const p = path.join(dir, ADDON_REL);
    if (fs.existsSync(p)) return p;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/**
 * Loads the addon (once per thread; each worker thread gets its own instance of the
 * context-aware module). Works from workers/io.ts (vitest, tsx) and dist/workers/io.js.
 */
export function loadIo(): Io {
  if (cached) return cached;
  const p = findAddon();
  if (!p) {
    throw new Error(
      `vsw: native addon not built: run npm install (no ${ADDON_REL} above ${__dirname})`,
    );
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  cached = require(p) as Io;
  return cached;
}
