import { isIP } from 'node:net';

/**
 * Whether TRUST_PROXY's address ranges, taken together, match every client of an address family:
 * `0.0.0.0/1,128.0.0.0/1` trusts every IPv4 peer as surely as `0.0.0.0/0` does. proxy-addr matches
 * IPv4 clients against IPv6 ranges through their mapped form (`::ffff:a.b.c.d`) and IPv4-mapped
 * clients against IPv4 ranges, so each family's coverage counts the other's ranges over the mapped
 * block. Named ranges (loopback, linklocal, uniquelocal) never cover a family and are left out.
 * Entries must already be valid (config-schema.ts checks them).
 */
export function coversEveryAddress(entries: readonly string[]): boolean {
  const v4: Interval[] = [];
  const v6: Interval[] = [];
  for (const entry of entries) {
    const range = parseRange(entry);
    if (!range) continue;
    if (range.family === 4) {
      v4.push(range);
      v6.push({ start: MAPPED_START + range.start, end: MAPPED_START + range.end });
    } else {
      v6.push(range);
      // The part of an IPv6 range inside ::ffff:0:0/96, as IPv4 addresses.
      const start = range.start > MAPPED_START ? range.start : MAPPED_START;
      const end = range.end < MAPPED_END ? range.end : MAPPED_END;
      if (start <= end) v4.push({ start: start - MAPPED_START, end: end - MAPPED_START });
    }
  }
  return covers(v4, (1n << 32n) - 1n) || covers(v6, (1n << 128n) - 1n);
}

interface Interval {
  start: bigint;
  end: bigint;
}

const MAPPED_START = 0xffffn << 32n;
const MAPPED_END = MAPPED_START + (1n << 32n) - 1n;

/** Whether the intervals together cover [0, last]. */
function covers(intervals: Interval[], last: bigint): boolean {
  intervals.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  let next = 0n;
  for (const { start, end } of intervals) {
    if (start > next) return false;
    if (end >= next) next = end + 1n;
    if (next > last) return true;
  }
  return false;
}

/** An address, CIDR or IPv4 address/netmask as an interval of its family; null for names. */
function parseRange(entry: string): (Interval & { family: 4 | 6 }) | null {
  const slash = entry.indexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return null;
  const bits = family === 4 ? 32 : 128;
  const suffix = slash === -1 ? String(bits) : entry.slice(slash + 1);
  const prefix = isIP(suffix) === 4 ? netmaskLength(suffix) : Number(suffix);
  const size = 1n << BigInt(bits - prefix);
  const start = (family === 4 ? ipv4Value(address) : ipv6Value(address)) & ~(size - 1n);
  return { family, start, end: start + size - 1n };
}

function ipv4Value(address: string): bigint {
  return address.split('.').reduce((value, octet) => (value << 8n) | BigInt(Number(octet)), 0n);
}

function netmaskLength(mask: string): number {
  return ipv4Value(mask).toString(2).replace(/0+$/, '').length;
}

function ipv6Value(address: string): bigint {
  let text = address.split('%')[0]!;
  // An embedded IPv4 tail (::ffff:1.2.3.4) as two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = ipv4Value(dotted[1]!);
    text = `${text.slice(0, dotted.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.reduce((value, group) => (value << 16n) | BigInt(parseInt(group, 16)), 0n);
}
