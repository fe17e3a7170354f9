import { afterEach, describe, expect, it } from 'vitest';
import type { DriverHook } from '../../src/checkpoint/driver.js';
import { FakeDriver } from './fake-driver.js';
import { protectedPair, withTimeout, type Pair } from './harness.js';

/**
 * onPrimaryStopping: the moment from which the proxy holds the primary's output. A driver that announces its
 * stop (a live pre-copy first) says when; for any other driver it is right before its suspend.
 */

/** A primary that keeps running through part of its suspend (as a pre-copy does), then announces the stop. */
class AnnouncingDriver extends FakeDriver {
  readonly announcesStop = true;
  readonly order: string[] = [];

  override async suspend(stopping?: () => void): Promise<void> {
    this.order.push('copying while running');
    stopping?.();
    this.order.push('stopped');
    await super.suspend();
  }
}

describe('Coordinator onPrimaryStopping', () => {
  let pair: Pair | null = null;
  afterEach(async () => {
    await pair?.close();
    pair = null;
  });

  it('fires once per checkpoint, before the suspend of a driver that does not announce its stop', async () => {
    const seen: Array<DriverHook | 'stopping'> = [];
    pair = await protectedPair({ coordinator: { onPrimaryStopping: () => seen.push('stopping') } });
    const primary = pair.primary;
    primary.onCall = (hook) => seen.push(hook);
    seen.length = 0;
    const outcome = await withTimeout(pair.coordinator.checkpoint('timer'), 5000, 'the checkpoint');
    expect(outcome.ok).toBe(true);
    expect(seen.slice(0, 2)).toEqual(['stopping', 'suspend']);
    expect(seen.filter((s) => s === 'stopping')).toHaveLength(1);
  });

  it('lets a driver that announces its stop say when, inside its suspend', async () => {
    const driver = new AnnouncingDriver(Buffer.from('primary state'));
    pair = await protectedPair({
      coordinator: { driver, onPrimaryStopping: () => driver.order.push('stopping') },
    });
    driver.order.length = 0;
    const outcome = await withTimeout(pair.coordinator.checkpoint('timer'), 5000, 'the checkpoint');
    expect(outcome.ok).toBe(true);
    expect(driver.order).toEqual(['copying while running', 'stopping', 'stopped']);
  });
});
