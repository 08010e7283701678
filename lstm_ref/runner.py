"""Running a candidate's checks in a worker process, so that a crash or a hang fails one configuration.

The implementations this harness is for are native kernels (C++/CUDA extensions, Triton, ctypes
wrappers), and native kernels crash: a segfault, an abort, ``os._exit``, an out-of-memory kill or
a hang inside a C call takes down, or holds forever, the process it runs in. A :class:`Runner`
runs each configuration's whole check (:func:`lstm_ref.conformance.check_forward` or
:func:`lstm_ref.gradients.check_gradients`) in a long-lived worker process and waits for its
verdict at most ``timeout`` seconds (a worker's start, importing torch and the candidate, is
not counted):

- the worker answers: its verdict is the configuration's, exactly as in-process;
- the worker dies: the configuration fails with what happened ("crashed: signal 11 (SIGSEGV)",
  "worker exited with code 3") and the worker's ``faulthandler`` traceback where Python could
  write one; the next configuration starts a fresh worker;
- the worker does not answer in time: its Python stacks are dumped (``faulthandler`` on
  SIGUSR1), it is killed, and the configuration fails as "timed out after 5 s: worker killed".

Each such failure carries a one-line command that reruns just that configuration in-process,
to run under a debugger. A worker is a fresh interpreter, never a fork (CUDA cannot be used in
a forked child), and chooses its device per configuration; a worker whose candidate hit a CUDA
error exits after reporting it, so a poisoned CUDA context never judges another configuration.
``isolate=False`` runs everything in this process instead (for pdb), where a hang is cut off by
a thread timeout and a crash ends the run.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import torch

from lstm_ref import conformance
from lstm_ref.candidates import CandidateError, Factory, load_factory
from lstm_ref.configs import Config
from lstm_ref.conformance import DEFAULT_TIMEOUT, FAILED, QUIET_WARNINGS, Result, check_forward, cuda_skip_reason
from lstm_ref.gradients import check_gradients

#: The checks a runner can run, by the name a Result's ``check`` has.
CHECKS: dict[str, Callable[..., Result]] = {"forward": check_forward, "gradients": check_gradients}

#: Seconds a timed-out worker is given to write its stacks before it is killed.
DUMP_GRACE = 0.5

#: Seconds a new worker may take to start (import torch and the candidate's module) before the
#: configuration it was started for fails; not counted in the per-configuration time limit.
STARTUP_TIMEOUT = 300.0


class Runner:
    """Runs the checks of one candidate, configuration by configuration.

    ``factory``: a factory or a ``MODULE:ATTR`` spec (a spec is imported in the worker; a
    factory object must be picklable, i.e. a module-level function). ``timeout``: seconds a
    configuration may take (0: no limit). ``memory_limit``: bytes the candidate may allocate in
    the worker above what the worker holds once torch and lstm_ref are imported
    (:func:`limit_allocations`), so a candidate that allocates without bound fails instead of
    exhausting the machine. On Linux the worker dies with the thread that started it (the one
    that called :meth:`check` when none was running), so a killed run leaves no worker behind.
    """

    def __init__(self, factory: Factory | str | None = None, *, seed: int = 0,
                 timeout: float = DEFAULT_TIMEOUT, isolate: bool = True, memory_limit: int | None = None) -> None:
        self.spec, loaded = load_factory(factory) if factory is None or isinstance(factory, str) else (
            factory_spec(factory), factory)
        self.factory: Factory | str = self.spec if isinstance(factory, str) or factory is None else loaded
        self.in_process_factory = loaded
        self.seed, self.timeout, self.isolate, self.memory_limit = seed, timeout, isolate, memory_limit
        self._sent_factory: str | bytes = self.factory if isinstance(self.factory, str) else b""
        if isolate and not isinstance(self.factory, str):  # a worker imports it by reference
            try:
                self._sent_factory = pickle.dumps(self.factory)
            except Exception as error:
                raise TypeError(f"the factory {self.factory!r} cannot be sent to a worker process ({error}): "
                                "define it at module level, give its MODULE:ATTR name, or run in this process "
                                "(isolate=False)") from None
        self._worker: _Worker | None = None

    def check(self, config: Config, check: str = "forward") -> Result:
        """The verdict on ``config`` of the ``check`` ("forward" or "gradients")."""
        function = CHECKS[check]
        if not self.isolate:
            if check == "forward":
                return check_forward(config, self.factory, self.seed, timeout=self.timeout)
            return function(config, self.factory, self.seed)
        skip = cuda_skip_reason(config)
        if skip:  # judged without a worker: none needs starting for an absent device
            return function(config, self.in_process_factory, self.seed)
        started = time.perf_counter()
        if self._worker is None:
            worker = self._worker = _Worker(self._sent_factory, self.seed, self.memory_limit)  # kill() reaches it now
            if not worker.connection.poll(STARTUP_TIMEOUT):
                self._worker = None
                details = worker.kill(dump_stacks=True)
                return self._failed(config, check, f"worker did not start within {STARTUP_TIMEOUT:g} s",
                                    details, started)
            try:
                worker.connection.recv()  # ready: torch and the candidate are imported
            except (EOFError, OSError):
                self._worker = None
                code, details = worker.wait_for_exit()
                return self._failed(config, check, f"worker failed to start: {exit_description(code)}",
                                    details, started)
        worker = self._worker
        started = time.perf_counter()
        try:
            worker.connection.send((check, config))
        except OSError:  # the worker died while idle (killed from outside): this configuration is lost with it
            self._worker = None
            code, details = worker.wait_for_exit()
            return self._failed(config, check, exit_description(code), details, started)
        if not worker.connection.poll(self.timeout or None):
            self._worker = None
            details = worker.kill(dump_stacks=True)
            return self._failed(config, check, f"timed out after {self.timeout:g} s: worker killed",
                                details, started)
        try:
            reply, keep = worker.connection.recv()
        except (EOFError, OSError):
            self._worker = None
            code, details = worker.wait_for_exit()
            return self._failed(config, check, exit_description(code), details, started)
        if not keep:  # the worker exits after a CUDA error: a fresh one judges the next configuration
            self._worker = None
            worker.kill()
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def _failed(self, config: Config, check: str, message: str, details: str, started: float) -> Result:
        return Result(config, FAILED, message=message, seconds=time.perf_counter() - started, check=check,
                      details=details, reproduce=reproducer_command(config, check, self.factory, self.seed))

    def kill(self) -> None:
        """Kill the worker now, from any thread: a check in flight fails as killed."""
        worker = self._worker
        if worker is not None:
            worker.process.kill()

    def close(self) -> None:
        """Stop the worker (if one is running); nothing is left behind."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def factory_spec(factory: Callable) -> str:
    """``MODULE:QUALNAME`` of a factory object, as a command line would name it."""
    return f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', repr(factory))}"


def reproducer_command(config: Config, check: str, factory: Factory | str | None, seed: int = 0) -> str:
    """A shell command that reruns ``check`` ("forward" or "gradients") on ``config`` in-process
    (no worker, no time limit): :func:`lstm_ref.conformance.reproducer_command`."""
    return conformance.reproducer_command(config, CHECKS[check], factory, seed)


def exit_description(code: int | None) -> str:
    """What a worker's exit code says happened: a signal's name, or the code it exited with."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"crashed: signal {-code} ({name})"
    return f"worker exited with code {code}"


class _Worker:
    """One worker process (a fresh interpreter running :func:`serve`), its pipe, and the file its
    faulthandler writes to. Not a ``multiprocessing`` child: that would re-run the parent's main
    script in the worker, which a REPL, a notebook or an unguarded script cannot survive."""

    def __init__(self, factory: str | bytes, seed: int, memory_limit: int | None) -> None:
        handle, fault_path = tempfile.mkstemp(prefix="lstm-ref-worker-", suffix=".txt")
        os.close(handle)
        self.fault_path = Path(fault_path)
        parent_end, child_end = socket.socketpair()
        with child_end:
            self.process = subprocess.Popen(
                [sys.executable, "-c", f"from lstm_ref.runner import serve; serve({child_end.fileno()})"],
                pass_fds=(child_end.fileno(),), stdin=subprocess.DEVNULL)
        self.connection = Connection(parent_end.detach())
        self.connection.send((os.getpid(), list(sys.path), factory, seed, torch.get_num_threads(), fault_path,
                              memory_limit))

    def kill(self, dump_stacks: bool = False) -> str:
        """Kill the worker (after dumping its stacks, if asked); its faulthandler output."""
        if dump_stacks and self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(DUMP_GRACE)
        self.process.kill()
        self.process.wait()
        return self._finish()

    def wait_for_exit(self) -> tuple[int | None, str]:
        """The exit code of a worker whose pipe closed, and its faulthandler output."""
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:  # closed its pipe but did not exit: do not leave it behind
            self.process.kill()
            self.process.wait()
        return self.process.returncode, self._finish()

    def stop(self) -> None:
        """Ask the worker to exit; kill it if it does not within a few seconds."""
        try:
            self.connection.send(None)
        except OSError:
            pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._finish()

    def _finish(self) -> str:
        self.connection.close()
        try:
            text = self.fault_path.read_text(errors="replace").strip()
        except OSError:
            text = ""
        self.fault_path.unlink(missing_ok=True)
        return without_worker_frames(text)


def without_worker_frames(traceback: str) -> str:
    """A faulthandler dump less the frames every worker has (process start-up, the serving loop)
    and the list of extension modules: what is left is the candidate's and the check's stack."""
    plumbing = ("multiprocessing/", 'File "<string>"', "lstm_ref/runner.py", "Extension modules:")
    lines = [line for line in traceback.splitlines() if not any(mark in line for mark in plumbing)]
    return "\n".join(lines).strip()


def _die_with(parent: int) -> None:
    """On Linux, have the kernel SIGKILL this worker when the thread that started it ends (a
    killed run, or a timed-out CI job, must not leave a hung candidate spinning); exit at once
    if ``parent`` is already gone. Elsewhere a worker outlives a killed parent until its
    current check returns and the closed pipe ends it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def private_memory() -> int:
    """Bytes of private writable memory this process holds: Linux's ``VmData`` (the heap, anonymous
    mappings, thread stacks, the writable data of loaded libraries), the sum ``RLIMIT_DATA``
    limits; 0 where ``/proc/self/status`` does not exist."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024  # "VmData:   785432 kB"
    return 0


def limit_allocations(limit: int) -> int:
    """Let this process allocate ``limit`` more bytes than it holds now, and no more; return the cap.

    The cap is ``RLIMIT_DATA`` = :func:`private_memory` + ``limit`` (or the hard limit already
    set, if lower): an allocation beyond it fails (torch: "DefaultCPUAllocator: can't allocate
    memory"; Python: MemoryError) instead of exhausting the machine. Measured after torch's
    import, so a limit means the same whichever torch build is installed: once imported, torch
    2.13.0+cpu holds 0.2 GiB of private memory in 0.6 GiB of address space, the CUDA build of
    torch 2.14.1 0.8 GiB in 3.1 GiB (its CUDA libraries' mappings). An address-space cap
    (``RLIMIT_AS``) would count those mappings, and any address space a CUDA context reserves,
    against the candidate.
    """
    import resource

    cap = private_memory() + limit
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    return cap


def serve(fd: int) -> None:
    """The worker's loop, on the socket ``fd``: take the parent's pid, sys.path and the candidate
    (a spec, or a pickled factory), say "ready" once the candidate is imported, then receive
    ``(check, config)`` and send ``(Result or exception, keep_going)``; ``None`` or a closed pipe
    ends it. A candidate's SystemExit ends the process with its code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    connection = Connection(fd)
    parent, sys.path[:], factory, seed, threads, fault_path, memory_limit = connection.recv()
    _die_with(parent)
    torch.set_num_threads(threads)
    if memory_limit:  # before the candidate's module is imported: its imports are its own allocations
        limit_allocations(memory_limit)
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    with open(fault_path, "w") as faults:
        faulthandler.enable(faults, all_threads=True)
        faulthandler.register(signal.SIGUSR1, faults, all_threads=True)
        try:  # a spec is passed on to the checks as given, so their reproducers name it
            loaded = load_factory(factory)[1] if isinstance(factory, str) else pickle.loads(factory)
        except CandidateError as error:
            problem: Exception | None = error
        except Exception as error:
            problem = CandidateError(f"the worker process cannot import the factory: {type(error).__name__}: "
                                     f"{error}; define it at module level of an importable module, give its "
                                     "MODULE:ATTR name, or run in this process (isolate=False)")
        else:
            problem = None
            factory = factory if isinstance(factory, str) else loaded
        connection.send("ready")
        while True:
            try:
                request = connection.recv()
            except EOFError:  # the parent went away
                return
            if request is None:
                return
            check, config = request
            try:
                if problem is not None:
                    raise problem
                reply: object = CHECKS[check](config, factory, seed)
            except Exception as error:  # the harness's own error: raised again in the parent
                reply = picklable(error)
            keep = not (isinstance(reply, Result) and config.device_type == "cuda" and "CUDA error" in reply.message)
            connection.send((reply, keep))
            if not keep:
                return


def picklable(error: Exception) -> Exception:
    """``error`` if it survives pickling, else a RuntimeError carrying its type and message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
