// The rate limit on the ICMP errors the router sends (time exceeded today), like Linux's
// global limit (net.ipv4.icmp_msgs_per_sec = 1000, icmp_msgs_burst = 50: a token bucket
// refilled by the milliseconds elapsed, icmp_global_allow()). Linux also has a per-destination
// limit (icmp_ratelimit, 1 s per peer with a burst of 6, inet_peer_xrlim_allow); vsw does not
// keep per-peer state, so traceroute through the switch is never held back by it. Only errors
// are limited: echo replies are not (Linux's icmp_ratemask 0x1818 covers destination
// unreachable, source quench, time exceeded and parameter problem only).
//
// One bucket per worker thread (module level: each worker has its own instance). A port's
// frames are all received by one worker, so one sender sees at most the rate; the switch as a
// whole at most workers x the rate. Time is milliseconds from an injected clock.

export const ICMP_ERRORS_PER_SEC = 1000;
export const ICMP_ERRORS_BURST = 50;

export class TokenBucket {
  /** Tokens now (fractional), at most `burst`. */
  private tokens: number;
  private last: number;

  constructor(readonly perSec: number, readonly burst: number, public clock: () => number) {
    this.tokens = burst;
    this.last = clock();
  }

  /** Take a token: true when one was left (the message may be sent). */
  take(): boolean {
    const now = this.clock();
    const dt = now - this.last;
    if (dt > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (dt * this.perSec) / 1000);
      this.last = now;
    } else if (dt < 0) {
      this.last = now; // a clock that went back: start counting again from here
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Full again (tests). */
  refill(): void {
    this.tokens = this.burst;
    this.last = this.clock();
  }
}

/** The bucket the router's ICMP errors draw from (this thread's). */
export const icmpErrors = new TokenBucket(ICMP_ERRORS_PER_SEC, ICMP_ERRORS_BURST, () => performance.now());
