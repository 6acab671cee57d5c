// control/impair.ts: tc-style settings into an ImpairSpec, with the errors a user sees, and
// the spec check state.json goes through (dataplane/impair/spec.ts checkSpec via checkState).
import { describe, it, expect } from 'vitest';
import { impairText, parseImpair, parseLossModel, parsePercent, parseRate, parseSize, parseTime } from '../../../control/impair';
import { checkState } from '../../../control/engine/records';
import { emptySpec } from '../../../dataplane/impair/spec';

describe('units, as tc takes them', () => {
  it('times, percentages, rates and sizes', () => {
    expect(parseTime('20ms')).toBe(20);
    expect(parseTime('500us')).toBe(0.5);
    expect(parseTime('1.5s')).toBe(1500);
    expect(parsePercent('10%', 'loss')).toBeCloseTo(0.1);
    expect(parsePercent('0.5', 'loss')).toBeCloseTo(0.005);
    expect(parseRate('10mbit')).toBe(10e6);
    expect(parseRate('1gbit')).toBe(1e9);
    expect(parseRate('2mbps')).toBe(16e6);
    expect(parseRate('64000')).toBe(64000);
    expect(parseSize('32k')).toBe(32768);
    expect(parseSize('1500')).toBe(1500);
  });

  it('refuses what tc would not take, with the form expected', () => {
    expect(() => parseTime('20')).toThrow(/a time with its unit/);
    expect(() => parseTime('2min')).toThrow(/a time with its unit/);
    expect(() => parseTime('61s')).toThrow(/at most 60s/);
    expect(() => parsePercent('101%', 'loss')).toThrow(/from 0 to 100/);
    expect(() => parsePercent('-1%', 'loss')).toThrow(/percentage/);
    expect(() => parseRate('10 furlongs')).toThrow(/a rate like/);
    expect(() => parseRate('1bit')).toThrow(/from 8bit/);
    expect(() => parseSize('12q')).toThrow(/a size like/);
  });

  it('loss models: netem\'s gemodel and 4-state parameters and defaults', () => {
    expect(parseLossModel('gilbert:5%,30%,80%,1%')).toEqual({ kind: 'gilbert', p: 0.05, r: 0.3, lossBad: 0.8, lossGood: 0.01 });
    const g = parseLossModel('gilbert:5');
    expect(g.kind === 'gilbert' && [g.r, g.lossBad, g.lossGood]).toEqual([0.95, 1, 0]);
    expect(parseLossModel('state:2,40,30,10,1')).toMatchObject({ kind: 'state', p13: 0.02, p31: 0.4, p32: 0.3, p23: 0.1, p14: 0.01 });
    expect(() => parseLossModel('bernoulli:5')).toThrow(/gilbert:P/);
    expect(() => parseLossModel('state:60,50,60')).toThrow(/at most 100%/);
  });
});

describe('parseImpair: combinations', () => {
  it('builds the spec, direction out by default, the given seed or the drawn one', () => {
    const { direction, spec } = parseImpair({ port: 'x', delay: '20ms', jitter: '5ms', distribution: 'normal', loss: '1%' }, 77);
    expect(direction).toBe('out');
    expect(spec).toMatchObject({ delay: 20, jitter: 5, distribution: 'normal', loss: 0.01, seed: 77, limit: 1000 });
    expect(parseImpair({ port: 'x', rate: '1mbit', seed: 5 }, 77).spec.seed).toBe(5);
    expect(impairText(spec)).toBe('delay 20ms jitter 5ms normal loss 1%');
  });

  it('refuses what netem refuses, and an impairment that does nothing', () => {
    expect(() => parseImpair({ port: 'x', reorder: '25%' }, 1)).toThrow(/give --delay too/);
    expect(() => parseImpair({ port: 'x', delay: '1ms', gap: 5 }, 1)).toThrow(/--gap needs --reorder/);
    expect(() => parseImpair({ port: 'x', burst: '32k' }, 1)).toThrow(/give --rate too/);
    expect(() => parseImpair({ port: 'x', loss: '1%', lossModel: 'gilbert:1' }, 1)).toThrow(/not both/);
    expect(() => parseImpair({ port: 'x', limit: 10 }, 1)).toThrow(/nothing to impair/);
    expect(() => parseImpair({ port: 'x', delay: '1ms', limit: 0 }, 1)).toThrow(/limit must be an integer from 1/);
    expect(() => parseImpair({ port: 'x', delay: '1ms', seed: -1 }, 1)).toThrow(/seed must be/);
    expect(() => parseImpair({ port: 'x', delay: '1ms', distribution: 'normal' }, 1)).toThrow(/give --jitter too/);
  });
});

describe('state.json: impairments are checked like every other field', () => {
  const state = (spec: unknown): unknown => ({ networks: [], containers: [], impairs: [{ port: 'vsw1', direction: 'out', spec }] });
  it('accepts a good one, names the bad field otherwise', () => {
    expect(checkState(state(emptySpec(3)))).toBeUndefined();
    expect(checkState(state({ ...emptySpec(3), loss: 5 }))).toMatch(/impairs\[0\]\.spec\.loss: 5 is not a fraction/);
    expect(checkState(state({ ...emptySpec(3), limit: 'many' }))).toMatch(/impairs\[0\]\.spec\.limit: expected an integer/);
    expect(checkState({ networks: [], containers: [], impairs: [{ port: 'vsw1', direction: 'sideways', spec: emptySpec(1) }] }))
      .toMatch(/direction: expected one of in, out, both/);
  });
});
