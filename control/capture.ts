// `vsw capture`: sessions that receive a port's frames (both directions) from the workers'
// capture rings. The workers copy frames only for ports with at least one session; while any
// session is open, the rings are drained every 20 ms and the frames handed to the sessions
// of their port.

import type { DataplaneHost } from '../workers/host';

const DRAIN_MS = 20;

export interface CaptureSession {
  stop(): Promise<void>;
}

type OnFrame = (frame: Uint8Array, timeMs: number) => void;

export class CaptureHub {
  private readonly host: DataplaneHost;
  private readonly sessions = new Set<{ port: number; onFrame: OnFrame }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(host: DataplaneHost) {
    this.host = host;
  }

  async open(port: number, onFrame: OnFrame): Promise<CaptureSession> {
    await this.host.setCapture(port, true);
    const s = { port, onFrame };
    this.sessions.add(s);
    if (!this.timer) {
      this.timer = setInterval(() => this.drain(), DRAIN_MS);
      this.timer.unref();
    }
    let stopped = false;
    return {
      stop: async (): Promise<void> => {
        if (stopped) return;
        stopped = true;
        this.drain();
        this.sessions.delete(s);
        if (this.sessions.size === 0 && this.timer) { clearInterval(this.timer); this.timer = undefined; }
        if (this.host.port(port)) await this.host.setCapture(port, false).catch(() => undefined);
      },
    };
  }

  private drain(): void {
    const { frames } = this.host.drainCaptures();
    for (const f of frames) {
      for (const s of this.sessions) if (s.port === f.port) s.onFrame(f.data, f.timeMs);
    }
  }
}
