/** Options of Sandbox.start. Every key is optional. */
export interface SandboxOptions {
  /** Image name ("debian", the default) or path to an image folder. */
  image?: string;
  /** Guest memory: MiB as a number, or "512M", "2G". Default "512M". */
  memory?: number | string;
  /** Guest CPUs. Default 1. */
  cpus?: number;
  /** "auto" (default: KVM/HVF when they work, else TCG), "kvm", "hvf", "tcg". */
  accel?: 'auto' | 'kvm' | 'hvf' | 'tcg';
  /** "restricted" (default: the guest reaches nothing outside) or "full". */
  /** "full" reaches the outside but not the host's loopback services (see allowHostLoopback). */
  networkMode?: 'restricted' | 'full';
  /** With networkMode "full": the guest may reach the host's 127.0.0.1 as 10.0.2.2. Default false. */
  allowHostLoopback?: boolean;
  /** Narrows networkMode "full" (then the default) to what the policy allows (see NetworkPolicy). */
  networkPolicy?: NetworkPolicy;
  /** Where templates are kept (default $XDG_CACHE_HOME/quicksand/templates). */
  templateDir?: string;
  /** Folders to look the image name up in first (then installed image packages, then $QUICKSAND_IMAGE_PATH, then the default). */
  imageDirs?: string[];
  /** The QEMU binary (default qemu-system-<arch> on PATH). */
  qemuPath?: string;
  /** Forwards 127.0.0.1:host on the host to guest in the guest. */
  portForwards?: Array<{ host: number; guest: number }>;
  /** Host folders shared into the guest once it is up (see Sandbox.mount). */
  mounts?: Array<{ host: string; guest: string; readonly?: boolean }>;
  /** Seconds to wait for the boot. Default 60. */
  bootTimeout?: number;
  extraQemuArgs?: string[];
  extraKernelArgs?: string[];
  /** Folder for the sandboxes' own folders. */
  workdir?: string;
  /** Boot the kernel even when a template of the image could be resumed (default false). */
  coldBoot?: boolean;
  /**
   * A `quicksand serve` server that keeps the sandbox instead of a VM of this process:
   * "http://127.0.0.1:PORT" (plain http on the loopback only), "https://host:port" or
   * "unix:/path/to.sock". Default $QUICKSAND_SERVER. Such a sandbox outlives this process until
   * stop() or its idle timeout; Sandbox.connect(sb.id) reaches it again. The options of this
   * host's VMs (imageDirs, qemuPath, workdir, portForwards, ...) are refused with it.
   */
  server?: string;
  /** The server's key for this client (default $QUICKSAND_API_KEY, with $QUICKSAND_SERVER only). */
  apiKey?: string;
  /** Labels of the sandbox, which Sandbox.list({ metadata }) filters by. */
  metadata?: Record<string, string>;
  /** Seconds a server lets the sandbox sit idle before it stops it (default: the server's; negative: never). */
  idleTimeout?: number;
  /**
   * A screen, keyboard and mouse driven from the host (screenshot, typeText, mouseClick, ...), in an
   * image with a desktop such as "debian-desktop" (another image rejects with InvalidConfigError):
   * true for 1280x800, or DisplayOptions.
   */
  display?: boolean | DisplayOptions;
}

/** A sandbox's screen (SandboxOptions.display). */
export interface DisplayOptions {
  /** Pixels; 0 and 0 (the default): 1280x800. 320x200 to 3840x2160. */
  width?: number;
  height?: number;
  /** Serve the screen for a person to watch, on 127.0.0.1 only, with a password of its own (Sandbox.vnc). */
  vnc?: boolean;
}

/** Key names for Sandbox.pressKey: each an X keysym name (Key.ENTER is "Return"). */
export declare const Key: {
  readonly ENTER: 'Return'; readonly TAB: 'Tab'; readonly ESCAPE: 'Escape'; readonly BACKSPACE: 'BackSpace';
  readonly DELETE: 'Delete'; readonly INSERT: 'Insert'; readonly SPACE: 'space'; readonly HOME: 'Home'; readonly END: 'End';
  readonly PAGE_UP: 'Page_Up'; readonly PAGE_DOWN: 'Page_Down';
  readonly LEFT: 'Left'; readonly RIGHT: 'Right'; readonly UP: 'Up'; readonly DOWN: 'Down';
  readonly CTRL: 'ctrl'; readonly ALT: 'alt'; readonly SHIFT: 'shift'; readonly SUPER: 'super';
  readonly F1: 'F1'; readonly F2: 'F2'; readonly F3: 'F3'; readonly F4: 'F4'; readonly F5: 'F5'; readonly F6: 'F6';
  readonly F7: 'F7'; readonly F8: 'F8'; readonly F9: 'F9'; readonly F10: 'F10'; readonly F11: 'F11'; readonly F12: 'F12';
};
/** One of Key's names (pressKey also takes any other X keysym name, or one printable character). */
export type KeyName = (typeof Key)[keyof typeof Key];

/** A mouse button. */
export type MouseButton = 'left' | 'right' | 'middle';

/** Which server, and with which key (default $QUICKSAND_SERVER and $QUICKSAND_API_KEY). */
export interface RemoteOptions {
  server?: string;
  apiKey?: string;
}

/** A sandbox a server keeps (Sandbox.list). */
export interface SandboxSummary {
  /** What Sandbox.connect takes. */
  id: string;
  metadata: Record<string, string>;
  image: string;
  running: boolean;
  /** When it was made, seconds since the epoch. */
  created: number;
  /** Seconds the server lets it sit idle before it stops it; 0: never. */
  idleTimeout: number;
}

/** Options of Sandbox.execute. */
export interface ExecuteOptions {
  /** Seconds; default 30. On timeout the command's whole process group is killed. */
  timeout?: number;
  cwd?: string;
  /** Default "/bin/sh". */
  shell?: string;
  env?: Record<string, string>;
  stdin?: string | Uint8Array;
  /** Run as this guest user (a name or uid) instead of root; an unknown user rejects with BadRequestError. */
  user?: string;
  /** Bytes of each stream kept for the result (default 256 MiB); callbacks still get every byte. */
  maxOutput?: number;
  /** Called on the main thread with output as it arrives, in order. */
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
  /** Aborting cancels the command and rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface ExecuteResult {
  stdout: string;
  stderr: string;
  /** -1 when timed out, 128+N when killed by signal N. */
  exitCode: number;
  timedOut: boolean;
  /** maxOutput cut the result's copy of stdout (or stderr). */
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  /** The exact bytes (stdout is them decoded as UTF-8). */
  stdoutBuffer: Buffer;
  stderrBuffer: Buffer;
  /** Seconds, as `timeout` (and as in Python). */
  duration: number;
}

/** Seconds from the start call to each phase; a warm start (resumed from a snapshot) boots no kernel. */
export interface BootTiming {
  warm: boolean;
  qemuStarted: number;
  kernelBooted: number;
  agentListening: number;
  ready: number;
}

/** One rich result of a code run: the same value in each format the code produced. */
export interface Result {
  text?: string;
  html?: string;
  markdown?: string;
  svg?: string;
  /** Base64, as Jupyter gives it (so are jpeg and pdf). */
  png?: string;
  jpeg?: string;
  pdf?: string;
  latex?: string;
  /** The decoded application/json value. */
  json?: unknown;
  javascript?: string;
  /** Other MIME types, by type. */
  extra?: Record<string, unknown>;
  /** The value of the cell's last expression, not something it displayed on the way. */
  isMainResult: boolean;
  /** The formats the result has ("text", "html", "png", ...; other MIME types as they are). */
  formats(): string[];
}

/** A run's output, in the chunks it came in. */
export interface Logs {
  stdout: string[];
  stderr: string[];
}

/** The exception the code raised, or "TimeoutError" (the run's timeout or a cancel) or "KernelDied". */
export interface ExecutionError {
  name: string;
  value: string;
  traceback: string;
}

/** What a code run produced. */
export interface Execution {
  results: Result[];
  logs: Logs;
  error: ExecutionError | null;
  /** The context's count of runs. */
  executionCount: number;
  /** The main result's text, if there is one. */
  readonly text: string | undefined;
}

/** A code context: its own kernel (Python) or shell state (bash). */
export interface CodeContext {
  id: string;
  language: string;
  cwd: string;
}

/** Options of Sandbox.runCode. */
export interface RunCodeOptions {
  /** "python" (the default) or "bash": that language's default context, when no context is given. */
  language?: string;
  /** A context or its id. */
  context?: CodeContext | string;
  /** Set for this run only. */
  envs?: Record<string, string>;
  /** Seconds; default 300, null for none. The cell is interrupted: error "TimeoutError", the state kept. */
  timeout?: number | null;
  /** Called on the main thread with each event in order; an async callback is awaited before the next. */
  onStdout?: (text: string) => unknown;
  onStderr?: (text: string) => unknown;
  onResult?: (result: Result) => unknown;
  onError?: (error: ExecutionError) => unknown;
  /** Aborting interrupts the cell and rejects with the signal's reason. */
  signal?: AbortSignal;
}

export class Sandbox {
  private constructor();
  static start(options?: SandboxOptions): Promise<Sandbox>;
  /** The sandbox `id` a server keeps for this key; rejects with NotFoundError for an unknown one. */
  static connect(id: string, options?: RemoteOptions): Promise<Sandbox>;
  /** The sandboxes a server keeps for this key whose metadata has every label given. */
  static list(options?: RemoteOptions & { metadata?: Record<string, string> }): Promise<SandboxSummary[]>;
  /** A server's sandbox: its idle timeout in seconds (negative: never), restarted now. */
  setIdleTimeout(seconds: number): Promise<void>;
  /** The server's id of a server's sandbox (what connect takes); a random one for a local sandbox. */
  readonly id: string;
  /** The sandbox's labels. */
  readonly metadata: Record<string, string>;
  /** True when a server keeps the sandbox. */
  readonly remote: boolean;
  execute(command: string, options?: ExecuteOptions): Promise<ExecuteResult>;
  /** Runs code in a code context (by default the language's default one); an exception is the Execution's error. */
  runCode(code: string, options?: RunCodeOptions): Promise<Execution>;
  createCodeContext(options?: { language?: string; cwd?: string }): Promise<CodeContext>;
  listCodeContexts(): Promise<CodeContext[]>;
  restartCodeContext(context: CodeContext | string): Promise<void>;
  removeCodeContext(context: CodeContext | string): Promise<void>;
  stop(): Promise<void>;
  /** Captures RAM and disk as checkpoint `tag`. */
  /**
   * Writes data (a string is UTF-8) as the file `path`, whole or not at all, with `mode`
   * (setuid, setgid and sticky bits included; no umask).
   */
  writeFile(path: string, data: Buffer | Uint8Array | string, opts?: { mode?: number; user?: string } & FileCallOptions): Promise<void>;
  /**
   * The bytes of the file `path`, at most `maxSize` (default 256 MiB): a larger file rejects with
   * BadRequestError before any of it is read; `download` streams a file of any size to the host's disk.
   */
  readFile(path: string, opts?: { user?: string; maxSize?: number } & FileCallOptions): Promise<Buffer>;
  /** Copies a host file or folder tree to `guestPath`, which must not exist. */
  upload(hostPath: string, guestPath: string, opts?: { user?: string } & FileCallOptions): Promise<void>;
  /** Copies a guest file or folder tree to `hostPath`, which must not exist. */
  download(guestPath: string, hostPath: string, opts?: { user?: string } & FileCallOptions): Promise<void>;
  listDir(path: string, opts?: FileCallOptions): Promise<FileInfo[]>;
  /** Rejects with NotFoundError when `path` does not exist. */
  stat(path: string, opts?: FileCallOptions): Promise<FileInfo>;
  exists(path: string, opts?: FileCallOptions): Promise<boolean>;
  /** Makes a folder with `mode` (default 0o755, no umask); with `parents` an existing one keeps its mode. */
  makeDir(path: string, opts?: { parents?: boolean; mode?: number; user?: string } & FileCallOptions): Promise<void>;
  remove(path: string, opts?: { recursive?: boolean } & FileCallOptions): Promise<void>;
  rename(src: string, dst: string, opts?: FileCallOptions): Promise<void>;
  /** Starts a command in the background; it outlives the call. */
  startProcess(command: string, opts?: ProcessOptions): Promise<Process>;
  /** A handle to a process another call started; callbacks get its output from the start. */
  attach(id: string, opts?: { onStdout?: (text: string) => void; onStderr?: (text: string) => void }): Promise<Process>;
  /** The background processes that still run. */
  listProcesses(): Promise<Array<{ id: string; pid: number; command: string; pty: boolean }>>;
  /** Shares a host folder at a guest path; readonly is enforced by the host. */
  mount(host: string, guest: string, opts?: { readonly?: boolean }): Promise<MountHandle>;
  /** Once it resolves the guest reaches nothing of the folder. */
  unmount(handle: MountHandle): Promise<void>;
  /** The shared folders mounted now, by guest path. */
  readonly activeMounts: MountHandle[];
  /** Replaces the network policy at once (null: none); networkMode "full" only. A bad entry rejects with InvalidConfigError. */
  setNetwork(policy: NetworkPolicy | null): Promise<void>;
  /** The network guard's counts since the sandbox started (networkMode "full" only). */
  networkStats(): NetworkStats;
  /** The screen as a PNG image; with `path` also written to that file. Without a display: BadRequestError (every desktop call). */
  screenshot(path?: string): Promise<Buffer>;
  /** The screen's size in pixels, as the guest has it now. */
  queryDisplaySize(): Promise<{ width: number; height: number }>;
  /** Types text on a US keyboard; a character with no key (beyond printable ASCII, newline, tab) rejects, nothing typed. */
  typeText(text: string): Promise<void>;
  /** Presses a key or a combination: each down in order, then up in reverse. */
  pressKey(...keys: Array<KeyName | string>): Promise<void>;
  /** Puts the pointer on pixel (x, y). */
  mouseMove(x: number, y: number): Promise<void>;
  /** Where mouseMove (or drag) last put the pointer ((0, 0) before any). */
  queryMousePosition(): Promise<{ x: number; y: number }>;
  mouseClick(button?: MouseButton, double?: boolean): Promise<void>;
  mouseDown(button?: MouseButton): Promise<void>;
  mouseUp(button?: MouseButton): Promise<void>;
  /** Wheel notches: dy down (negative: up), dx right (negative: left). */
  scroll(dx?: number, dy?: number): Promise<void>;
  /** The left button pressed at start, moved to end, released there. */
  drag(start: [number, number], end: [number, number]): Promise<void>;
  /** Where a VNC viewer watches the screen (127.0.0.1), or null unless display: { vnc: true }. */
  vnc(): { port: number; password: string } | null;
  checkpoint(tag: string): Promise<void>;
  /** Returns to checkpoint `tag`, running processes included. */
  revert(tag: string): Promise<void>;
  /** Writes the sandbox's state to a folder and resolves with its path; `image: path` resumes it. */
  save(name: string): Promise<string>;
  /** Checks a save without starting it. */
  static validateSave(nameOrPath: string): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  readonly isRunning: boolean;
  readonly accelerator: 'kvm' | 'hvf' | 'tcg';
  readonly arch: 'x86_64' | 'arm64';
  readonly bootTiming: BootTiming;
  /** The QEMU process id. */
  readonly pid: number;
  consoleLog(): string;
}

export class QuicksandError extends Error {
  /** A stable string such as "QS_ERR_IMAGE_NOT_FOUND". */
  readonly code: string;
  /** The C ABI status number. */
  readonly status: number;
}
export class InvalidConfigError extends QuicksandError {}
export class ImageNotFoundError extends QuicksandError {}
export class BootError extends QuicksandError {}
export class BootTimeoutError extends BootError {}
export class SandboxNotRunningError extends QuicksandError {}
export class AuthError extends QuicksandError {}
export class TransportError extends QuicksandError {}
export class BadRequestError extends QuicksandError {}
export class CallCancelledError extends QuicksandError {}
export class InvalidHandleError extends QuicksandError {}
export class InternalError extends QuicksandError {}
export class SnapshotError extends QuicksandError {}
/** The guest ran out of processes or memory to start the command. */
export class ResourceError extends QuicksandError {}
/** A path in the guest (or the host path of an upload) does not exist, or a server has no sandbox of that id. */
export class NotFoundError extends QuicksandError {}
/** The guest user of the call may not do that to the path. */
export class PermissionError extends QuicksandError {}
export class LibraryNotFoundError extends QuicksandError {}

/** A file in the guest. */
export interface ProcessOptions {
  cwd?: string;
  env?: Record<string, string>;
  shell?: string;
  user?: string;
  /** Run on a terminal of this size: one output stream (stdout), raw input. */
  pty?: { rows: number; cols: number };
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
}

/** A background process; the guest keeps the last 4 MiB of its output. */
export interface Process {
  readonly id: string;
  readonly pid: number;
  writeStdin(data: string | Uint8Array): Promise<void>;
  /** On a terminal: sends ^D. */
  closeStdin(): Promise<void>;
  /** A number 1 to 64 or a name; default 'SIGTERM'. To the whole process group. */
  signal(sig?: number | string): Promise<void>;
  kill(): Promise<void>;
  resize(rows: number, cols: number): Promise<void>;
  /** Its end and its output from the start; an aborted signal stops waiting, not the process. */
  wait(opts?: { signal?: AbortSignal }): Promise<ExecuteResult>;
}

/**
 * What a sandbox in networkMode "full" may reach (docs/security.md). Each entry is a domain
 * ("pypi.org"), a wildcard domain ("*.example.com"), an IP or CIDR, each optionally with a port or
 * range ("api.example.com:443", "10.1.0.0/16:5432"). Allow beats deny; with any allowOut entry,
 * everything else is denied. Private, link-local (cloud metadata) and multicast ranges are denied
 * unless allowOut names them. Names not allowed get NXDOMAIN.
 */
export interface NetworkPolicy {
  allowOut?: string[];
  denyOut?: string[];
  /** Names the engine's DNS answers with these addresses itself (still subject to allowOut). */
  hosts?: Record<string, string[]>;
}

/** A sandbox's network counts since it started. */
export interface NetworkStats {
  /** Flows (TCP connections, UDP and ICMP conversations) the guest opened. */
  readonly allowed: number;
  /** Packets the guard stopped, each logged at debug with its destination. */
  readonly dropped: number;
  /** DNS questions answered and refused under a policy. */
  readonly namesAllowed: number;
  readonly namesRefused: number;
}

export interface MountHandle {
  readonly id: string;
  /** Absolute, symlinks resolved. */
  readonly host: string;
  readonly guest: string;
  readonly readonly: boolean;
}

/**
 * Options every file call takes. A call without a timeout rejects with TransportError once the
 * agent has made no progress for 60 s (a frozen VM); a NUL byte in a path is a BadRequestError.
 */
export interface FileCallOptions {
  /** Seconds: the whole call's bound, past which it rejects with CallCancelledError. */
  timeout?: number;
}

export interface FileInfo {
  name: string;
  /** "file", "dir", "symlink" or "other". */
  type: string;
  size: number;
  /** Permission bits (0o7777). */
  mode: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  /** A symlink's target, else null. */
  target: string | null;
}

/** Sandboxes started ahead; start() takes one in milliseconds. */
export class Pool {
  static create(options?: SandboxOptions & { size?: number }): Promise<Pool>;
  /** From the pool, or a normal start when none waits. */
  start(): Promise<Sandbox>;
  /** Stops the sandboxes still waiting, not those taken. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}
