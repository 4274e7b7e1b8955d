import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * Ports the kernel hands out for `listen(0)` and outgoing connections. A block for a process that starts
 * later must come from below this range, or another test's server may take one of its ports first.
 */
function ephemeralRangeStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32_768;
  } catch {
    return 32_768;
  }
}

/** A run of `count` consecutive free loopback ports (for processes that take a port block). */
export async function freePortBlock(count: number): Promise<number> {
  const highest = Math.min(ephemeralRangeStart(), 65_536) - count - 1;
  const lowest = Math.min(10_000, highest - 1000);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = lowest + Math.floor(Math.random() * (highest - lowest));
    const checks = await Promise.all(Array.from({ length: count }, (_, i) => isFree(base + i)));
    if (checks.every(Boolean)) return base;
  }
  throw new Error(`no block of ${count} free ports found`);
}
