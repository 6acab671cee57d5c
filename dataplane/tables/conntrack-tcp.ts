// The TCP part of connection tracking: states, their timeouts, and the state machine that
// seen() runs on every TCP packet of a tracked connection.
//
// TCP, in the spirit of Linux's tcp_conntracks table (no sequence-number checks):
//   SYN (orig) in NONE/SYN_SENT/TIME_WAIT/CLOSE -> SYN_SENT (a reopen clears the FIN marks)
//   SYN+ACK (reply) in SYN_SENT/SYN_RECV -> SYN_RECV;  SYN (reply) in SYN_SENT -> SYN_RECV
//   ACK (orig) in SYN_RECV -> ESTABLISHED
//   FIN (either) in SYN_RECV/ESTABLISHED -> FIN_WAIT
//   ACK from the other side in FIN_WAIT -> CLOSE_WAIT (the first FIN was answered)
//   FIN from the other side in FIN_WAIT/CLOSE_WAIT -> LAST_ACK (both sides closed)
//   ACK from the first closer in LAST_ACK -> TIME_WAIT (the last FIN was answered)
//   RST -> CLOSE
//   a first packet without SYN (mid-stream pickup, nf_conntrack_tcp_loose=1) -> ESTABLISHED,
//   then handled as in ESTABLISHED (a FIN goes on to FIN_WAIT)
//   anything else: state unchanged (expiry refreshed)

import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../wire/tcp';

// A connection's flags word: F_REPLIED for every protocol, then TCP's FIN marks.
/** A packet was seen in the reply direction. */
export const F_REPLIED = 1;
const F_FIN_ORIG = 2;      // a FIN was seen in the original direction
const F_FIN_REPLY = 4;     // ... in the reply direction
const F_FIN1_REPLY = 8;    // the first FIN came from the reply direction

/** TCP states (as Linux names them); NONE = created, no packet accounted yet. */
export const CT_TCP_NONE = 0;
export const CT_TCP_SYN_SENT = 1;
export const CT_TCP_SYN_RECV = 2;
export const CT_TCP_ESTABLISHED = 3;
export const CT_TCP_FIN_WAIT = 4;
export const CT_TCP_CLOSE_WAIT = 5;
export const CT_TCP_LAST_ACK = 6;
export const CT_TCP_TIME_WAIT = 7;
export const CT_TCP_CLOSE = 8;

export const TCP_STATE_NAMES = [
  'NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE',
];

/** Seconds, by TCP state (Linux nf_conntrack_tcp_timeout_*). NONE as SYN_SENT. */
export const TCP_TIMEOUTS = new Int32Array([120, 120, 60, 432000, 120, 60, 30, 120, 10]);
/**
 * An ESTABLISHED connection picked up mid-stream that has not seen a reply yet: Linux's
 * "unacknowledged" timeout (5 min) rather than 5 days, so a flood of stray ACKs cannot fill
 * the table for days.
 */
export const CT_TIMEOUT_TCP_UNREPLIED_ESTABLISHED = 300;

/**
 * Advance a connection's TCP state (word stateAt of r) and its flags (word flagsAt: FIN
 * marks; the caller has set F_REPLIED for a reply already) for a packet in direction dir
 * (0 original, 1 reply) with TCP flags f. Returns the timeout of the new state, in seconds.
 * Under the conntrack lock.
 */
export function tcpSeen(r: Int32Array, stateAt: number, flagsAt: number, dir: number, f: number): number {
  let fl = r[flagsAt];
  let st = r[stateAt];
  if (f & TCP_RST) {
    st = CT_TCP_CLOSE;
  } else if (f & TCP_SYN) {
    if (f & TCP_ACK) {
      if (dir === 1 && (st === CT_TCP_SYN_SENT || st === CT_TCP_SYN_RECV)) st = CT_TCP_SYN_RECV;
      else if (st === CT_TCP_NONE) st = CT_TCP_ESTABLISHED;
    } else if (dir === 0) {
      if (st === CT_TCP_NONE || st === CT_TCP_SYN_SENT || st === CT_TCP_TIME_WAIT || st === CT_TCP_CLOSE) {
        st = CT_TCP_SYN_SENT;
        fl &= ~(F_FIN_ORIG | F_FIN_REPLY | F_FIN1_REPLY);
      }
    } else if (st === CT_TCP_SYN_SENT) {
      st = CT_TCP_SYN_RECV; // simultaneous open
    }
  } else {
    if (st === CT_TCP_NONE && (f & (TCP_FIN | TCP_ACK)) !== 0) st = CT_TCP_ESTABLISHED;
    const mine = dir === 0 ? F_FIN_ORIG : F_FIN_REPLY;
    if (f & TCP_FIN) {
      if (st === CT_TCP_SYN_RECV || st === CT_TCP_ESTABLISHED) {
        st = CT_TCP_FIN_WAIT;
        fl |= mine | (dir === 1 ? F_FIN1_REPLY : 0);
      } else if ((st === CT_TCP_FIN_WAIT || st === CT_TCP_CLOSE_WAIT) && (fl & mine) === 0) {
        st = CT_TCP_LAST_ACK;
        fl |= mine;
      }
    } else if (f & TCP_ACK) {
      const firstCloser = (fl & F_FIN1_REPLY) !== 0 ? 1 : 0;
      if (st === CT_TCP_SYN_RECV) {
        if (dir === 0) st = CT_TCP_ESTABLISHED;
      } else if (st === CT_TCP_FIN_WAIT) {
        if (dir !== firstCloser) st = CT_TCP_CLOSE_WAIT;
      } else if (st === CT_TCP_LAST_ACK) {
        if (dir === firstCloser) st = CT_TCP_TIME_WAIT;
      }
    }
  }
  r[stateAt] = st;
  r[flagsAt] = fl;
  return st === CT_TCP_ESTABLISHED && (fl & F_REPLIED) === 0
    ? CT_TIMEOUT_TCP_UNREPLIED_ESTABLISHED : TCP_TIMEOUTS[st];
}
