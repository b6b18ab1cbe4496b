'use strict';

/**
 * Quicksand: run commands in a Linux VM of your own. A Promise API over
 * libquicksand (ffi-napi); nothing blocks the event loop.
 */
const { Sandbox } = require('./lib/sandbox');
const { Pool } = require('./lib/pool');
const errors = require('./lib/errors');
const { Key } = require('./lib/desktop');

const { errorFor, ...publicErrors } = errors;
module.exports = { Sandbox, Pool, Key, ...publicErrors };
