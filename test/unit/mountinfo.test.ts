// control/netns.ts mountPeersOf: which peer group the mount holding /run/netns belongs to.
// The texts are /proc/self/mountinfo as seen on the test machine, outside and inside
// `ip netns exec`.

import { describe, expect, it } from 'vitest';
import { mountPeersOf } from '../../control/netns';

const outside = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
  '45 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw',
  '46 45 0:4 net:[4026532174] /run/netns/a rw shared:2 - nsfs nsfs rw',
].join('\n');
const inside = [
  '56 55 254:0 / / rw,relatime - ext4 /dev/vda rw',
  '58 56 0:21 / /proc rw,relatime - proc proc rw',
  '84 56 254:0 /run/netns /run/netns rw,relatime master:1 - ext4 /dev/vda rw',
  '85 84 0:4 net:[4026532174] /run/netns/a rw master:2 - nsfs nsfs rw',
].join('\n');

describe('mountPeersOf', () => {
  it('the /run/netns mount itself: shared outside, a slave of it inside ip netns exec', () => {
    expect(mountPeersOf(outside, '/run/netns')).toEqual({ shared: 1, master: undefined });
    expect(mountPeersOf(inside, '/run/netns')).toEqual({ shared: undefined, master: 1 });
  });

  it('no /run/netns mount yet: the mount it lives on (the longest prefix), the top one of a stack', () => {
    const t = [
      '1 0 8:1 / / rw shared:1 - ext4 /dev/sda rw',
      '2 1 0:5 / /run rw shared:7 - tmpfs tmpfs rw',
      '3 1 0:6 / /run rw master:9 - tmpfs tmpfs rw',
      '4 1 0:7 / /running rw shared:8 - tmpfs tmpfs rw',
    ].join('\n');
    expect(mountPeersOf(t, '/run/netns')).toEqual({ shared: undefined, master: 9 });
    expect(mountPeersOf('1 0 8:1 / / rw shared:1 master:3 - ext4 /dev/sda rw', '/run/netns')).toEqual({ shared: 1, master: 3 });
  });

  it('nothing to go by', () => {
    expect(mountPeersOf('', '/run/netns')).toBeUndefined();
    expect(mountPeersOf('1 0 8:1 / / rw - ext4 /dev/sda rw', '/run/netns')).toEqual({ shared: undefined, master: undefined });
  });
});
