"""How the methods of the asyncio API and of its synchronous twin are
written once (the sans-I/O way): each method is a generator that decides
what to do and yields the steps that wait (a blocking library call, or a
call that streams); two small drivers run those steps, one on the caller's
thread (``blocking``: SyncSandbox, SyncProcess, SyncPool) and one on the
event loop (``awaitable``: Sandbox, Process, Pool, where blocking calls go
to a worker thread so that nothing holds up the loop).

A class takes a shared method as ``execute = awaitable(_methods.execute)``:
its signature, defaults, checks, encoding and docstring are the shared
one's, and type checkers see them (ParamSpec), with the return type of
each API.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, Generator, Optional, TypeVar

if TYPE_CHECKING:
    from typing_extensions import Concatenate, ParamSpec

    P = ParamSpec("P")

R = TypeVar("R")
S = TypeVar("S")
F = TypeVar("F", bound=Callable[..., Any])


class Blocking:
    """A step: a blocking call, made on the caller's thread by the
    synchronous API and on a worker thread by the asyncio one."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def run(self) -> Any:
        return self.fn(*self.args)

    async def run_async(self) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self.fn, *self.args)


class Native(Blocking):
    """A step each API does its own way: ``fn`` is the API's own method (a
    plain function on the synchronous side, a coroutine function on the
    asyncio side), e.g. following a call's output on the caller's thread
    or on the loop."""

    async def run_async(self) -> Any:
        result: Awaitable[Any] = self.fn(*self.args)
        return await result


# A shared method: yields steps, gets each one's result back, returns R.
Op = Generator[Blocking, Any, R]


async def _run(op: "Op[R]", wait: Callable[[Blocking], Awaitable[Any]]) -> R:
    """Runs op to its end, each step by ``wait``; a step's exception
    (cancellation included) is raised in op where it waited."""
    value: Any = None
    error: Optional[BaseException] = None
    while True:
        try:
            step = op.throw(error) if error is not None else op.send(value)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        try:
            value, error = await wait(step), None
        except BaseException as e:  # noqa: BLE001 - handed to op
            value, error = None, e


async def _at_once(step: Blocking) -> Any:
    return step.run()


async def _on_the_loop(step: Blocking) -> Any:
    return await step.run_async()


def _run_here(op: "Op[R]") -> R:
    """Runs op on this thread: with steps that never suspend, _run's
    coroutine ends at its first send, no event loop needed."""
    coro = _run(op, _at_once)
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a step of a blocking method suspended")


def _unwrapped(op: Callable[..., Any]) -> inspect.Signature:
    """The op's signature with the return type it has for the caller (R,
    not Op[R]), so help() and inspect show what the call gives."""
    sig = inspect.signature(op)
    ret = sig.return_annotation
    if isinstance(ret, str) and ret.startswith("Op[") and ret.endswith("]"):
        sig = sig.replace(return_annotation=ret[3:-1])
    return sig


def blocking(op: "Callable[Concatenate[S, P], Op[R]]") -> "Callable[Concatenate[S, P], R]":
    """A shared method, run to its end on the caller's thread."""

    def method(self: S, /, *args: "P.args", **kwargs: "P.kwargs") -> R:
        return _run_here(op(self, *args, **kwargs))

    functools.update_wrapper(method, op)
    method.__signature__ = _unwrapped(op)  # type: ignore[attr-defined]
    return method


def awaitable(op: "Callable[Concatenate[S, P], Op[R]]") -> "Callable[Concatenate[S, P], Coroutine[Any, Any, R]]":
    """A shared method as a coroutine: its steps wait on the event loop."""

    async def method(self: S, /, *args: "P.args", **kwargs: "P.kwargs") -> R:
        return await _run(op(self, *args, **kwargs), _on_the_loop)

    functools.update_wrapper(method, op)
    method.__signature__ = _unwrapped(op)  # type: ignore[attr-defined]
    return method


def shared_doc(op: Callable[..., Any]) -> Callable[[F], F]:
    """Gives a method written out by hand (a classmethod that mypy could
    not type through ``awaitable``/``blocking``) the shared op's docstring."""

    def take(fn: F) -> F:
        fn.__doc__ = op.__doc__
        return fn

    return take
