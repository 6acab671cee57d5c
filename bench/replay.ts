// Bench of `vsw replay` (control/replay.ts): how many frames per second one core runs
// through the offline switch, reading the inputs and writing every output file included.
// A synthetic session: two containers on one network (a gateway configured, as vsw always
// has), N small UDP frames between their two known MACs, alternating, 1 us apart, half in
// each port's input capture. Prints frames/s (the figure docs/EXPERIMENTS.md records).
//
//   flock /tmp/vsw-bench.lock node dist/bench/replay.js [--frames N] [--trace]
// (build first: npx tsc -p tsconfig.json). Needs no root; writes to a temp dir it removes.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Fdb, fdbBytes } from '../dataplane/tables/fdb';
import { Neigh, NEIGH_DEFAULTS, neighBytes } from '../dataplane/tables/neigh';
import { Conntrack, CONNTRACK_DEFAULTS, conntrackBytes } from '../dataplane/tables/conntrack';
import { PortTable } from '../dataplane/tables/ports';
import { buildEthernet, buildIpv4, buildUdp, ETHERTYPE_IPV4, IPPROTO_UDP } from '../dataplane/wire';
import { PcapWriter } from '../control/pcap';
import { takeSnapshot } from '../control/snapshot';
import { runReplay } from '../control/replay';
import type { PortHandle } from '../workers/host';

const args = process.argv.slice(2);
const frames = Number(args[args.indexOf('--frames') + 1] || 2_000_000) || 2_000_000;
const trace = args.includes('--trace');

const MAC_A = '02:42:0a:59:00:02';
const MAC_B = '02:42:0a:59:00:03';

function udp(src: string, dst: string, sip: string, dip: string): Uint8Array {
  return buildEthernet({
    dst, src, etherType: ETHERTYPE_IPV4,
    payload: buildIpv4({ src: sip, dst: dip, protocol: IPPROTO_UDP, payload: buildUdp({ src: sip, dst: dip, srcPort: 5000, dstPort: 6000, payload: new Uint8Array(18) }) }),
  });
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-bench-replay-'));
try {
  const fdbCfg = { maxEntries: 16384, maxPerPort: 4096, maxPorts: 1024, agingSeconds: 300 };
  const neighCfg = { ...NEIGH_DEFAULTS };
  const ctCfg = { ...CONNTRACK_DEFAULTS };
  const portTable = new PortTable(1024);
  const ports: PortHandle[] = [1, 2].map((id) => ({
    id, name: `vswbench000${id}`, kind: 'afpacket', netId: 0, vnet: true, worker: 0, fd: -1, vlans: { untagged: 0, pvid: 0, tagged: [] },
  }));
  for (const p of ports) portTable.add(p.id, p.name, p.netId, p.vlans);
  const snap = takeSnapshot({
    host: {
      ports: () => ports, portTable, now: () => 1_700_000_000,
      lastL3: {
        nets: [{ id: 0, gwIp: 0x0a590001, gwMacHi: 0x0242, gwMacLo: 0x0a590001, subnet: 0x0a590000, mask: 0xffffff00, internal: false, icc: true, hostPort: -1, hostIp: 0, hostMacHi: 0, hostMacLo: 0 }],
        uplink: null, mappings: [],
      },
      fdb: new Fdb(fdbCfg, new SharedArrayBuffer(fdbBytes(fdbCfg))),
      neigh: new Neigh(neighCfg, new SharedArrayBuffer(neighBytes(neighCfg))),
      ct: new Conntrack(ctCfg, new SharedArrayBuffer(conntrackBytes(ctCfg))),
    },
    refs: ports.map((p) => ({ id: p.id, name: p.name, network: 'bench', container: `c${p.id}` })),
    networks: [{ id: 0, name: 'bench' }],
    containers: ports.map((p) => ({ name: `c${p.id}`, networks: ['bench'] })),
    impairments: [],
  });
  fs.writeFileSync(path.join(dir, 'snap.json'), JSON.stringify(snap));
  const ab = udp(MAC_A, MAC_B, '10.89.0.2', '10.89.0.3');
  const ba = udp(MAC_B, MAC_A, '10.89.0.3', '10.89.0.2');
  const wa = new PcapWriter(path.join(dir, 'a.pcap'));
  const wb = new PcapWriter(path.join(dir, 'b.pcap'));
  for (let i = 0; i < frames; i++) {
    const sec = 1_700_000_001 + Math.floor(i / 1e6);
    if (i % 2 === 0) wa.write(ab, 0, ab.length, sec, i % 1e6);
    else wb.write(ba, 0, ba.length, sec, i % 1e6);
  }
  wa.close();
  wb.close();
  const t0 = process.hrtime.bigint();
  const s = runReplay({
    snapshot: path.join(dir, 'snap.json'), out: path.join(dir, 'out'), trace,
    inputs: [{ port: 'c1', file: path.join(dir, 'a.pcap') }, { port: 'c2', file: path.join(dir, 'b.pcap') }],
  });
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  if (s.forwarded !== frames) throw new Error(`expected ${frames} forwarded, got ${JSON.stringify(s)}`);
  console.log(`replay: ${frames} frames (${ab.length} bytes) in ${sec.toFixed(2)} s: ${Math.round(frames / sec)} frames/s${trace ? ' (with --trace)' : ''}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
