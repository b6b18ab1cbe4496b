'use strict';

/**
 * Errors: one base class, one subclass per status code of the C ABI.
 * `err.code` is a stable string ('QS_ERR_IMAGE_NOT_FOUND'), `err.status`
 * the C ABI's number.
 */
class QuicksandError extends Error {
  /** @param {string} message @param {number} [status] */
  constructor(message, status) {
    super(message);
    this.name = this.constructor.name;
    this.status = status ?? this.constructor.status;
    this.code = this.constructor.code;
  }
}
QuicksandError.status = 1;
QuicksandError.code = 'QS_ERR_UNKNOWN';

function kind(name, status, code, base = QuicksandError) {
  const cls = { [name]: class extends base {} }[name];
  cls.status = status;
  cls.code = code;
  return cls;
}

const InvalidConfigError = kind('InvalidConfigError', 2, 'QS_ERR_INVALID_CONFIG');
const ImageNotFoundError = kind('ImageNotFoundError', 3, 'QS_ERR_IMAGE_NOT_FOUND');
const BootError = kind('BootError', 4, 'QS_ERR_BOOT_FAILED');
const BootTimeoutError = kind('BootTimeoutError', 5, 'QS_ERR_BOOT_TIMEOUT', BootError);
const SandboxNotRunningError = kind('SandboxNotRunningError', 6, 'QS_ERR_NOT_RUNNING');
const AuthError = kind('AuthError', 7, 'QS_ERR_AUTH');
const TransportError = kind('TransportError', 8, 'QS_ERR_TRANSPORT');
const BadRequestError = kind('BadRequestError', 9, 'QS_ERR_BAD_REQUEST');
const CallCancelledError = kind('CallCancelledError', 10, 'QS_ERR_CANCELLED');
const InvalidHandleError = kind('InvalidHandleError', 11, 'QS_ERR_INVALID_HANDLE');
const InternalError = kind('InternalError', 12, 'QS_ERR_INTERNAL');
const SnapshotError = kind('SnapshotError', 13, 'QS_ERR_SNAPSHOT');
const ResourceError = kind('ResourceError', 14, 'QS_ERR_RESOURCE');
const NotFoundError = kind('NotFoundError', 15, 'QS_ERR_NOT_FOUND');
const PermissionError = kind('PermissionError', 16, 'QS_ERR_PERMISSION');
const LibraryNotFoundError = kind('LibraryNotFoundError', 0, 'QS_ERR_LIBRARY_NOT_FOUND');

const byStatus = new Map(
  [InvalidConfigError, ImageNotFoundError, BootError, BootTimeoutError, SandboxNotRunningError, AuthError,
    TransportError, BadRequestError, CallCancelledError, InvalidHandleError, InternalError, SnapshotError,
    ResourceError, NotFoundError, PermissionError].map((c) => [c.status, c]),
);

/** The error for a C ABI status. */
function errorFor(status, message) {
  const Cls = byStatus.get(status) ?? QuicksandError;
  return new Cls(message, status);
}

module.exports = {
  QuicksandError, InvalidConfigError, ImageNotFoundError, BootError, BootTimeoutError, SandboxNotRunningError,
  AuthError, TransportError, BadRequestError, CallCancelledError, InvalidHandleError, InternalError,
  SnapshotError, ResourceError, NotFoundError, PermissionError, LibraryNotFoundError, errorFor,
};
