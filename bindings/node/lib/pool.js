'use strict';

// Pools of ready sandboxes (include/quicksand.h, "Pools").

const native = require('./native');
const { Sandbox } = require('./sandbox');
const { encodeConfig } = require('./options');
const { InvalidConfigError, SandboxNotRunningError } = require('./errors');

const { onPool, check } = native;
const newAsync = onPool('qs_pool_new');
const startAsync = onPool('qs_pool_start');
const closeAsync = onPool('qs_pool_close');

const pools = new Set();
const freePool = (ptr) => {
  if (pools.delete(ptr)) native.lib().qs_pool_free(ptr);
};
const collected = new FinalizationRegistry(freePool);
process.on('exit', () => {
  for (const ptr of [...pools]) freePool(ptr);
});

/**
 * Sandboxes started ahead: `size` of one configuration kept started, warmed
 * and waiting, so that start() takes one in milliseconds; the pool refills
 * in the background. A sandbox from the pool is a fresh start's (its own
 * token, issued when taken; the clock set then). When the pool cannot
 * refill (the image missing, QEMU failing), start() starts normally.
 *
 *   const pool = await Pool.create({ size: 4, image: 'debian' });
 *   const sb = await pool.start();
 *   await pool.close();   // stops the sandboxes still waiting, not those taken
 */
class Pool {
  #ptr;

  /** @private Use Pool.create. */
  constructor(ptr) {
    this.#ptr = ptr;
    pools.add(ptr);
    collected.register(this, ptr);
  }

  /** @param {import('../index').SandboxOptions & { size?: number }} [options] */
  static async create({ size = 4, ...options } = {}) {
    if (!Number.isInteger(size)) throw new InvalidConfigError(`size must be an integer, not ${size}`);
    const cfg = encodeConfig(options);
    const out = native.outPointer();
    const err = native.outPointer();
    await check(await newAsync(cfg, cfg.length, size, out, err), err);
    return new Pool(out.deref());
  }

  /** A started sandbox: from the pool, or a normal start when none waits. */
  async start() {
    if (!pools.has(this.#ptr)) throw new SandboxNotRunningError('the pool was released');
    const out = native.outPointer();
    const err = native.outPointer();
    await check(await startAsync(this.#ptr, out, err), err);
    return new Sandbox(out.deref());
  }

  /** Stops the sandboxes still waiting; later starts reject. Safe to call twice. */
  async close() {
    if (!pools.has(this.#ptr)) return;
    const err = native.outPointer();
    await check(await closeAsync(this.#ptr, err), err);
  }

  async [Symbol.asyncDispose]() {
    await this.close();
  }
}

module.exports = { Pool };
