'use strict';

// The code interpreter on a real VM: a debian-python sandbox, whose warm
// start has its default Python kernel running.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Sandbox, BadRequestError, NotFoundError } = require('..');

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let sb;
before(async () => {
  sb = await Sandbox.start({ image: 'debian-python', memory: 1024 });
});
after(async () => {
  await sb?.stop();
});

test('state carries from run to run', async () => {
  const first = await sb.runCode('x = 41');
  const ex = await sb.runCode('x + 1');
  assert.equal(ex.text, '42');
  assert.equal(ex.error, null);
  assert.equal(ex.results.length, 1);
  assert.equal(ex.results[0].isMainResult, true);
  assert.deepEqual(ex.results[0].formats(), ['text']);
  assert.equal(ex.executionCount, first.executionCount + 1);
});

test('callbacks in order, an async one awaited', async () => {
  const seen = [];
  const ex = await sb.runCode(
    "import sys\nprint('one', flush=True)\nprint('two', file=sys.stderr, flush=True)\nprint('three', flush=True)",
    {
      onStdout: (t) => seen.push(`out:${t}`),
      onStderr: async (t) => {
        await new Promise((r) => setTimeout(r, 50));
        seen.push(`err:${t}`);
      },
    },
  );
  assert.equal(seen.join(''), 'out:one\nerr:two\nout:three\n');
  assert.equal(ex.logs.stdout.join(''), 'one\nthree\n');
  assert.equal(ex.logs.stderr.join(''), 'two\n');
});

test('an exception is the execution\'s error', async () => {
  const errors = [];
  const ex = await sb.runCode('def f():\n    return 1 / 0\nf()', { onError: (e) => errors.push(e) });
  assert.equal(ex.error?.name, 'ZeroDivisionError');
  assert.match(ex.error.traceback, /return 1 \/ 0/);
  assert.deepEqual(errors, [ex.error]);
  assert.equal(ex.text, undefined);
});

test('a chart is a PNG', async () => {
  const results = [];
  const ex = await sb.runCode('import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.show()', {
    onResult: (r) => results.push(r),
  });
  const png = ex.results.find((r) => r.png);
  assert.ok(png, `no PNG among ${JSON.stringify(ex.results.map((r) => r.formats()))} (error ${JSON.stringify(ex.error)})`);
  assert.deepEqual(Buffer.from(png.png, 'base64').subarray(0, 8), PNG_SIGNATURE);
  assert.ok(png.formats().includes('png'));
  assert.equal(results.length, ex.results.length);
});

test('a timeout interrupts the cell and keeps the state', async () => {
  await sb.runCode('kept = 41');
  const ex = await sb.runCode('while True:\n    pass', { timeout: 2 });
  assert.equal(ex.error?.name, 'TimeoutError');
  assert.equal((await sb.runCode('kept')).text, '41');
});

test('a callback that throws rejects the call', async () => {
  await assert.rejects(
    sb.runCode("import time\nprint('a', flush=True)\ntime.sleep(60)", {
      onStdout: () => {
        throw new Error('stop here');
      },
    }),
    /stop here/,
  );
  assert.equal((await sb.runCode('1 + 1')).text, '2');
});

test('a bash context keeps its folder', async () => {
  const ctx = await sb.createCodeContext({ language: 'bash', cwd: '/tmp' });
  try {
    assert.equal(ctx.language, 'bash');
    assert.equal(ctx.cwd, '/tmp');
    assert.equal((await sb.runCode('pwd', { context: ctx })).logs.stdout.join(''), '/tmp\n');
    await sb.runCode('cd /var && N=7', { context: ctx.id });
    assert.equal((await sb.runCode('echo "$PWD $N"', { context: ctx })).logs.stdout.join(''), '/var 7\n');
    assert.ok((await sb.listCodeContexts()).some((c) => c.id === ctx.id));
    await sb.restartCodeContext(ctx);
    assert.equal((await sb.runCode('echo "[$N]"', { context: ctx })).logs.stdout.join(''), '[]\n');
  } finally {
    await sb.removeCodeContext(ctx);
  }
  await assert.rejects(sb.runCode('pwd', { context: ctx }), NotFoundError);
});

test('bad requests', async () => {
  await assert.rejects(sb.runCode('1', { language: 'cobol' }), BadRequestError);
  await assert.rejects(sb.runCode('1', { colour: 'red' }), /unknown runCode option "colour"/);
  await assert.rejects(sb.runCode(1), BadRequestError);
  await assert.rejects(sb.removeCodeContext('nope'), NotFoundError);
});
