// Type-checked, never run: `make test-node` runs `tsc --noEmit` on
// index.d.ts and this file, so a declaration that does not compile, or
// that the API's documented use does not fit, fails the tests.
import {
  Sandbox, Pool, Process, ExecuteResult, FileInfo, MountHandle, NetworkPolicy, NetworkStats, SandboxOptions, SandboxSummary,
  QuicksandError, NotFoundError, BadRequestError, SandboxNotRunningError,
  Execution, Result, ExecutionError, CodeContext, Logs, Key, KeyName, DisplayOptions,
} from '../index';

export async function everyCall(): Promise<void> {
  const options: SandboxOptions = {
    image: 'debian', memory: '1G', cpus: 2, accel: 'auto', networkMode: 'restricted', allowHostLoopback: false,
    portForwards: [{ host: 8080, guest: 80 }], mounts: [{ host: '/tmp', guest: '/mnt', readonly: true }],
    bootTimeout: 60, extraQemuArgs: [], extraKernelArgs: [], coldBoot: false, imageDirs: ['/images'],
  };
  const onServer: SandboxOptions = { server: 'http://127.0.0.1:8080', apiKey: 'k', metadata: { job: '1' }, idleTimeout: -1 };
  const there0: Sandbox = await Sandbox.connect('id', { server: 'unix:/run/qs.sock', apiKey: 'k' });
  const found: SandboxSummary[] = await Sandbox.list({ metadata: { job: '1' }, server: 'unix:/s' });
  const summary: [string, Record<string, string>, string, boolean, number, number] = [
    found[0].id, found[0].metadata, found[0].image, found[0].running, found[0].created, found[0].idleTimeout];
  const labels: Record<string, string> = there0.metadata;
  const ident: string = there0.id;
  const isRemote: boolean = there0.remote;
  await there0.setIdleTimeout(60);
  void [onServer, summary, labels, ident, isRemote];
  const sb: Sandbox = await Sandbox.start(options);
  const ac = new AbortController();
  const r: ExecuteResult = await sb.execute('echo hi', {
    timeout: 5, cwd: '/', env: { A: 'b' }, stdin: 'in', user: 'nobody', maxOutput: 1 << 20,
    onStdout: (t: string) => void t.length, onStderr: (t: string) => void t.length, signal: ac.signal,
  });
  const n: number = r.exitCode + r.duration;
  const b: Buffer = r.stdoutBuffer;
  const flags: boolean = r.timedOut || r.stdoutTruncated || r.stderrTruncated;
  void [n, b, flags, r.stdout.trim(), r.stderr];

  const ctx: CodeContext = await sb.createCodeContext({ language: 'bash', cwd: '/tmp' });
  const ex: Execution = await sb.runCode('x + 1', {
    language: 'python', context: ctx, envs: { A: 'b' }, timeout: 10, signal: ac.signal,
    onStdout: (t: string) => void t, onStderr: async (t: string) => void t,
    onResult: (res: Result) => void res.formats(), onError: (e: ExecutionError) => void e.name,
  });
  const logs: Logs = ex.logs;
  const first: Result | undefined = ex.results[0];
  const png: string | undefined = first?.png;
  const text: string | undefined = ex.text;
  const count: number = ex.executionCount;
  const failed: string | undefined = ex.error?.traceback;
  await sb.runCode('1', { context: ctx.id, timeout: null });
  const contexts: CodeContext[] = await sb.listCodeContexts();
  await sb.restartCodeContext(ctx);
  await sb.removeCodeContext(ctx.id);
  void [logs.stdout, logs.stderr, png, text, count, failed, contexts[0].cwd, first?.isMainResult];

  await sb.writeFile('/f', 'text', { mode: 0o600, user: 'root', timeout: 10 });
  const data: Buffer = await sb.readFile('/f', { maxSize: 100 });
  const entries: FileInfo[] = await sb.listDir('/');
  const info: FileInfo = await sb.stat('/f');
  const there: boolean = await sb.exists('/f');
  void [data, entries, info.target ?? info.name, info.mtime + info.mode + info.size, there];
  await sb.makeDir('/d', { parents: true, mode: 0o755 });
  await sb.rename('/f', '/g');
  await sb.remove('/d', { recursive: true });
  await sb.upload('/tmp/x', '/x', { user: 'nobody', timeout: 5 });
  await sb.download('/x', '/tmp/y', { user: 'nobody' });

  const p: Process = await sb.startProcess('cat', { pty: { rows: 24, cols: 80 }, onStdout: (t) => void t });
  await p.writeStdin('x');
  await p.closeStdin();
  await p.signal('SIGTERM');
  await p.resize(30, 100);
  const same: Process = await sb.attach(p.id, { onStdout: (t) => void t });
  const ended: ExecuteResult = await same.wait({ signal: ac.signal });
  const running: Array<{ id: string; pid: number; command: string; pty: boolean }> = await sb.listProcesses();
  void [ended, running, p.pid];

  const m: MountHandle = await sb.mount('/tmp', '/mnt/t', { readonly: true });
  const mounted: MountHandle[] = sb.activeMounts;
  await sb.unmount(m);
  void mounted;

  const policy: NetworkPolicy = { allowOut: ['pypi.org:443', '10.1.0.0/16'], denyOut: ['*.example.com'], hosts: { 'db.internal': ['10.1.0.5'] } };
  const guarded: SandboxOptions = { networkMode: 'full', networkPolicy: policy };
  await sb.setNetwork(policy);
  await sb.setNetwork(null);
  const counts: NetworkStats = sb.networkStats();
  const netCounts: [number, number, number, number] = [counts.allowed, counts.dropped, counts.namesAllowed, counts.namesRefused];
  void [guarded, netCounts];

  const screen: DisplayOptions = { width: 1024, height: 768, vnc: true };
  const desk: Sandbox = await Sandbox.start({ image: 'debian-desktop', memory: 1536, display: screen });
  await Sandbox.start({ image: 'debian-desktop', display: true });
  const shot: Buffer = await desk.screenshot();
  await desk.screenshot('/tmp/screen.png');
  const size: { width: number; height: number } = await desk.queryDisplaySize();
  const enter: KeyName = Key.ENTER;
  await desk.pressKey(Key.CTRL, Key.ALT, 't');
  await desk.typeText('ls\n');
  await desk.pressKey(enter);
  await desk.mouseMove(10, 20);
  const at: { x: number; y: number } = await desk.queryMousePosition();
  await desk.mouseClick('right', true);
  await desk.mouseClick();
  await desk.mouseDown();
  await desk.mouseUp('left');
  await desk.scroll(0, -3);
  await desk.drag([1, 2], [3, 4]);
  const watch: { port: number; password: string } | null = desk.vnc();
  // @ts-expect-error a button has one of three names
  await desk.mouseClick('fourth');
  // @ts-expect-error display is true or DisplayOptions
  await Sandbox.start({ display: 'yes' });
  void [shot, size, at, watch?.port, watch?.password];

  await sb.checkpoint('c');
  await sb.revert('c');
  const saved: string = await sb.save('name');
  await Sandbox.validateSave(saved);
  const facts: [boolean, string, string, number, number, string] = [
    sb.isRunning, sb.accelerator, sb.arch, sb.pid, sb.bootTiming.ready, sb.consoleLog(),
  ];
  void facts;
  await sb.stop();

  const pool: Pool = await Pool.create({ size: 2, image: 'debian' });
  const pooled: Sandbox = await pool.start();
  await pooled.stop();
  await pool.close();

  try {
    await sb.attach('p-none');
  } catch (e) {
    if (e instanceof NotFoundError || e instanceof BadRequestError || e instanceof SandboxNotRunningError) {
      const q: QuicksandError = e;
      void [q.code, q.status, q.message];
    }
  }
}
