#!/usr/bin/env node
'use strict';

// `quicksand image list|install|remove` (npx quicksand ...): the Go CLI's
// and the Python CLI's image commands (bindings/python/quicksand/_imagecli.py)
// over the same library calls (include/quicksand.h, "Images"). `list` also
// shows the images of installed image packages (lib/images.js).

const { encode, decode } = require('@msgpack/msgpack');
const native = require('./native');
const { packageImageDirs } = require('./images');

const USAGE = `usage: quicksand image list
       quicksand image install ARCHIVE.qsimage [--dir DIR]
       quicksand image remove NAME [--dir DIR]
DIR: the image folder (default: the default image folder)`;

const { voidPtr, voidPtrPtr, qsStatus } = native;

// The image functions as include/quicksand.h declares them (checked by
// internal/contract).
const signatures = {
  qs_image_list: [qsStatus, [voidPtr, 'size_t', voidPtr, voidPtrPtr]],
  qs_image_install: [qsStatus, ['string', 'string', voidPtr, voidPtr, voidPtr, voidPtrPtr]],
  qs_image_remove: [qsStatus, ['string', 'string', voidPtr, voidPtrPtr]],
};

let declared = null;
/** The image functions, declared on the library native.js found. */
function images() {
  if (!declared) declared = native.ffi.Library(native.libraryPath(), signatures);
  return declared;
}

function human(n) {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${Math.floor(n / 1024)} KiB`;
}

/** Calls fn(buf, err) and returns the buffer the library filled. */
function call(fn) {
  const buf = native.newBuffer();
  const err = native.outPointer();
  native.check(fn(buf, err), err);
  return native.takeBuffer(buf);
}

/** The table of `image list`, as the Python CLI prints it. */
function list() {
  const opts = Buffer.from(encode({ dirs: packageImageDirs() }));
  const rows = [['NAME', 'ARCH', 'SIZE', 'SOURCE', 'FOLDER']];
  for (const e of decode(call((buf, err) => images().qs_image_list(opts, opts.length, buf, err)))) {
    rows.push([e.name, e.arch, human(Number(e.bytes)), e.source, e.dir]);
  }
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => [0, 1, 2, 3].map((i) => r[i].padEnd(widths[i])).join('  ') + '  ' + r[4]).join('\n');
}

/** Splits ARGS into positional words and a --dir value; unknown flags are errors. */
function parse(args) {
  const words = [];
  let dir = null;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--dir' || a === '-dir') {
      if (i + 1 >= args.length) throw new UsageError(`${a} needs a folder`);
      dir = args[++i];
    } else if (a.startsWith('--dir=')) {
      dir = a.slice('--dir='.length);
    } else if (a.startsWith('-') && a !== '-') {
      throw new UsageError(`unknown flag ${a}`);
    } else {
      words.push(a);
    }
  }
  return { words, dir };
}

class UsageError extends Error {}

/** Runs one command line (the words after `quicksand`); returns what to print. */
function run(argv) {
  if (argv[0] !== 'image') throw new UsageError(argv.length ? `unknown command ${argv[0]}` : 'no command');
  const verb = argv[1];
  const { words, dir } = parse(argv.slice(2));
  const one = (what) => {
    if (words.length !== 1) throw new UsageError(`image ${verb} takes one ${what}`);
    return words[0];
  };
  switch (verb) {
    case 'list':
      if (words.length || dir !== null) throw new UsageError('image list takes no arguments');
      return list();
    case 'install': {
      const archive = one('archive');
      return call((buf, err) => images().qs_image_install(archive, dir, null, null, buf, err)).toString();
    }
    case 'remove': {
      const name = one('image name');
      return `removed ${call((buf, err) => images().qs_image_remove(name, dir, buf, err)).toString()}`;
    }
    default:
      throw new UsageError(verb ? `unknown image command ${verb}` : 'no image command');
  }
}

function main() {
  try {
    console.log(run(process.argv.slice(2)));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`quicksand: ${e.message}\n${USAGE}`);
      process.exitCode = 2;
    } else {
      console.error(`quicksand: ${e.message}`);
      process.exitCode = 1;
    }
  }
}

if (require.main === module) main();

module.exports = { run, UsageError, signatures };
