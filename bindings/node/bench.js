'use strict';

// The Node figures of `make bench`: warm start to ready, execute `true`, and
// streaming throughput with a callback. Prints one JSON figure a line.
const { Sandbox } = require('.');

function figure(name, unit, values, warmup, command) {
  const v = [...values].sort((a, b) => a - b);
  const q = (p) => v[Math.max(0, Math.min(v.length - 1, Math.ceil(p * v.length) - 1))];
  console.log(JSON.stringify({ name, unit, median: q(0.5), p99: q(0.99), min: v[0], max: v[v.length - 1], runs: v.length, warmup, command }));
}

async function roundTrips(n) {
  const sb = await Sandbox.start();
  try {
    const rtt = [];
    for (let i = 0; i < n + 20; i++) {
      const t = performance.now();
      await sb.execute('true');
      if (i >= 20) rtt.push(performance.now() - t);
    }
    figure('execute `true`, round trip', 'ms', rtt, 20, "await sb.execute('true')");
  } finally {
    await sb.stop();
  }
}

async function warmStarts() {
  const starts = [];
  for (let i = 0; i < 4; i++) {
    const t = performance.now();
    const sb = await Sandbox.start();
    if (i) starts.push((performance.now() - t) / 1000);
    await sb.stop();
  }
  figure('warm start to ready', 's', starts, 1, 'await Sandbox.start()');
}

async function stream(size) {
  const sb = await Sandbox.start();
  try {
    await sb.execute('true');
    let got = 0;
    const t = performance.now();
    const r = await sb.execute(`yes abcdefgh | head -c ${size}`, { timeout: 600, onStdout: (s) => { got += s.length; } });
    if (got !== size || r.exitCode !== 0) throw new Error(`streamed ${got} of ${size} bytes`);
    figure(`text stdout throughput, ${size >> 20} MiB, with onStdout callback`, 'MB/s',
      [size / 1e6 / ((performance.now() - t) / 1000)], 0, 'yes abcdefgh | head -c N, onStdout counting');
  } finally {
    await sb.stop();
  }
}

// bench.js rtt N: round trips; bench.js stream SIZE: streaming throughput on
// a fresh sandbox after one command; bench.js: warm starts.
const [mode, arg] = process.argv.slice(2);
const run = mode === 'rtt' ? roundTrips(Number(arg)) : mode === 'stream' ? stream(Number(arg)) : warmStarts();
run.catch((e) => {
  console.error('bench.js:', e);
  process.exit(1);
});
