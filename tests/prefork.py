"""``python -m pipeline`` (or ``-m pipeline.report``, ``-c CODE``) for the tests, forked from a
process that has imported the libraries.

Every CLI run in a test is a real process, but a new interpreter spends about six of a small
run's twelve CPU-seconds importing MLflow, scikit-learn (SciPy), pandas (pyarrow), matplotlib
and Hydra, and the suite starts well over a hundred. So, like ``multiprocessing``'s fork
server, each test worker starts one server process (this file as a script) that imports them
once (``import pipeline`` first, as every entry point does: it chooses the BLAS kernel NumPy
loads) and then forks a child for each run: the child takes the test's pipes as its stdout
and stderr, its folder, its environment and command line (``sys.argv``, ``sys.orig_argv``),
and runs the module as ``python -m`` does (``runpy``), ending as that interpreter would
(``sys.exit``, an uncaught exception, a signal). It is the same code from the command line
on; only the interpreter's start, the third-party imports and MLflow's map of the installed
packages (a CPU-second of every run that logs a model) are shared.

What a fresh interpreter decides as it starts or as NumPy loads cannot change in a fork: a run
whose environment differs from the server's in such a variable (``PYTHON*``, BLAS and OpenMP
threads, NumPy's CPU features, memlab's kernel choice, locale, matplotlib, Hydra), or whose
command line names ``numerics``, is started as a fresh interpreter instead (:func:`start`).
So are the tests of the interpreter's own start (``test_quick_exit``, ``--help``, a Ctrl-C
from a terminal, a bare environment), which call ``subprocess`` themselves.

Another program's commands can be forked too: :meth:`Server.python` writes a ``python`` that,
first on that program's PATH, forks ``python -m pipeline...`` from a server that imported a
project's code (``dvc repro``'s stages in a copy of the project, ``test_dvc.py``) and execs the
real interpreter for anything else, or when the code changed since the server imported it.

The server reports a child's end without reaping it (``waitid(WNOWAIT)``); it reaps it when
the test has read the status and closed the connection, so that a signal the test sends to
a run that has just ended can only reach that run's zombie, never a new process with its pid.
"""

from __future__ import annotations

import atexit
import json
import os
import pathlib
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

# Variables read as the interpreter starts or as a library loads: a run that sets them
# differently from the server needs an interpreter of its own.
STARTUP = ("PYTHON", "OPENBLAS", "OMP_", "MKL_", "NPY_", "MPL", "LC_", "LANG", "HYDRA_",
           "MEMLAB_BLAS_KERNEL", "MEMLAB_SHELL_CORETYPE", "MEMLAB_NUMERICS")  # fmt: skip
POLL = 0.02  # seconds between the server's looks at its children


# ------------------------------------------------------------------ the server (a script)
def serve(path: str, root: str | None = None) -> None:
    """Preload, then fork a run per request on the socket ``path``, until the test worker
    that started this process is gone. ``root``: the project whose ``pipeline`` the runs are
    (a copy's, as ``python -m`` in that folder finds it); None: the installed one."""
    if root is not None:
        sys.path.insert(0, root)
    import pipeline  # noqa: F401  (first: the BLAS kernel, as in every entry point)

    for module in ("numpy", "hydra", "omegaconf", "mlflow", "mlflow.pyfunc", "mlflow.sklearn",
                   "mlflow.store.tracking.sqlalchemy_store", "sklearn.base",
                   "sklearn.neural_network", "sklearn.datasets", "scipy.stats", "pandas",
                   "matplotlib.figure", "matplotlib.backends.backend_agg",
                   # imported by every run on its way (tqdm's, MLflow's git tag and tracing)
                   "IPython", "git", "mlflow.tracing.processor.otel"):  # fmt: skip
        __import__(module)
    _know_the_installed_packages()
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(f"{path}.new")
    listener.listen(64)
    os.rename(f"{path}.new", path)  # there once it listens
    running: dict[int, socket.socket] = {}  # pid: connection, the child not ended yet
    ended: dict[socket.socket, int] = {}  # connection: pid, reported, not yet reaped
    while os.getppid() == parent:
        readable, _, _ = select.select([listener, *ended], [], [], POLL)
        for conn in readable:
            if conn is listener:
                accepted, _ = listener.accept()
                request, fds = _receive(accepted)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    for other in [accepted, *running.values(), *ended]:
                        other.close()
                    _run(request, fds)  # ends this process as an interpreter ends
                for fd in fds:
                    os.close(fd)
                accepted.sendall(b"%d\n" % pid)
                running[pid] = accepted
            else:  # the test has read the status: reap
                os.waitpid(ended.pop(conn), 0)
                conn.close()
        for pid, conn in list(running.items()):
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None and info.si_pid == pid:
                del running[pid]
                code = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
                try:
                    conn.sendall(b"%d\n" % code)
                    ended[conn] = pid
                except OSError:  # the test is gone
                    os.waitpid(pid, 0)
                    conn.close()


def _know_the_installed_packages() -> None:
    """Make MLflow's map of the installed distributions and their modules, as a run makes it
    when it logs its first model (to warn of requirements this environment does not meet):
    ``importlib.metadata`` reads every distribution's file list, about a CPU-second a run.
    Like an import, it depends on nothing but what is installed, and it records nothing."""
    from mlflow.utils import requirements_utils

    make = getattr(requirements_utils, "_init_packages_to_modules_map", None)
    if make is not None:  # MLflow's private helper: a version without it makes no map here
        make()


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    (size,) = struct.unpack("!I", conn.recv(4, socket.MSG_WAITALL))
    data, fds, _, _ = socket.recv_fds(conn, size, 2, socket.MSG_WAITALL)
    while len(data) < size:
        data += conn.recv(size - len(data), socket.MSG_WAITALL)
    return json.loads(data), fds


def _run(request: dict, fds: list[int]) -> None:
    """In the forked child: become ``python -m MODULE ARGS`` or ``python -c CODE ARGS`` in the
    request's folder and environment, with the test's pipes as stdout and stderr."""
    import runpy
    import types

    devnull = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((devnull, 0), (fds[0], 1), (fds[1], 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # TMPDIR as the run's environment says
    flag, target, *args = request["command"]
    sys.orig_argv = [sys.executable, *request["command"]]
    if flag == "-m":
        sys.argv = ["-m", *args]
        sys.path[0] = os.getcwd()  # as `python -m` has it
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c", *args]
        sys.path[0] = ""  # as `python -c` has it
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        exec(compile(target, "<string>", "exec"), main.__dict__)
    sys.exit(0)


# ------------------------------------------------------------------ the test's side
class Server:
    """A server process (this file as a script) with environment ``env``; ``root``: the project
    folder whose ``pipeline`` it preloads (None: the installed one). Stopped by :meth:`stop`,
    or when the test worker that started it ends."""

    def __init__(self, env: dict[str, str], root=None) -> None:
        self.folder = tempfile.mkdtemp(prefix="memlab-prefork-")
        self.socket = os.path.join(self.folder, "socket")
        self.environment = dict(env)
        self.root = root and str(root)
        self.code = _code(self.root)  # what the server imports, as it starts
        command = [sys.executable, __file__, self.socket, *([str(root)] if root else [])]
        with open(os.path.join(self.folder, "server.log"), "w") as log:
            self.process = subprocess.Popen(command, env=env, cwd=root or self.folder,
                                            stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
        deadline = time.monotonic() + 120
        while not os.path.exists(self.socket) and self.process.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test's prefork server did not start: see {self.folder}")
            time.sleep(0.05)

    def forks(self, env: dict[str, str]) -> bool:
        """Whether a run with environment ``env`` can be forked by this server."""
        return self.process.poll() is None and _startup(env) == _startup(self.environment)

    def python(self) -> str:
        """A folder with a ``python`` that runs ``python -m pipeline...`` forked by this server
        when it can (:func:`shim`) and is the real interpreter otherwise: first on a PATH, it
        serves the commands of another program (``dvc repro``'s stages)."""
        folder = os.path.join(self.folder, "bin")
        os.makedirs(folder, exist_ok=True)
        script = os.path.join(folder, "python")
        server = (self.socket, _startup(self.environment), self.root, self.code)
        with open(script, "w") as out:
            out.write(f"#!{sys.executable} -S\nimport sys\n"
                      f"sys.path.insert(0, {os.path.dirname(__file__)!r})\nimport prefork\n"
                      f"prefork.shim({sys.executable!r}, *{server!r})\n")  # fmt: skip
        os.chmod(script, 0o755)
        return folder

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


_server: Server | None = None  # this test worker's, for memlab's commands (started on first use)


def start(command, cwd, env: dict[str, str], server_env: dict[str, str]):
    """``python COMMAND`` (``-m MODULE ARGS`` or ``-c CODE ARGS``) in ``cwd`` with environment
    ``env``, its stdout and stderr piped as text: a :class:`Forked` process when the environment
    and command line allow it, else a fresh ``subprocess.Popen``. The server starts on first
    use, with ``server_env``."""
    command = [str(a) for a in command]
    assert command[0] in ("-m", "-c"), command
    if any("numerics" in a for a in command[2:]) or not _server_for(env, server_env):
        pipe = subprocess.PIPE
        return subprocess.Popen([sys.executable, *command], cwd=cwd, env=env, stdout=pipe,
                                stderr=pipe, text=True)  # fmt: skip
    return Forked(command, cwd, env, _server.socket)


def run(command, cwd, env, server_env, timeout: float) -> subprocess.CompletedProcess:
    """:func:`start`, then wait; like ``subprocess.run(..., capture_output=True, text=True)``."""
    process = start(command, cwd, env, server_env)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _startup(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(STARTUP)}


def _server_for(env: dict[str, str], server_env: dict[str, str]) -> bool:
    """Whether this test worker's server can fork a run with ``env`` (started on first use;
    ``MEMLAB_TEST_PREFORK=0`` turns it off: every run a fresh interpreter)."""
    global _server
    if not enabled():
        return False
    if _server is None:
        _server = Server(server_env)
        atexit.register(_server.stop)
    return _server.forks(env)


def enabled() -> bool:
    """Whether the tests fork memlab's commands (``MEMLAB_TEST_PREFORK=0``: never)."""
    return os.environ.get("MEMLAB_TEST_PREFORK", "1") != "0"


def _request(conn: socket.socket, command, cwd, env: dict[str, str], fds: list[int]) -> None:
    """Ask the server on ``conn`` to fork ``python COMMAND`` in ``cwd`` with ``env``, its stdout
    and stderr the descriptors ``fds`` (what :func:`_receive` reads)."""
    payload = json.dumps({"command": command, "cwd": str(cwd), "env": env}).encode()
    conn.sendall(struct.pack("!I", len(payload)))
    socket.send_fds(conn, [payload], fds)


def _code(root: str | None) -> str:
    """A digest of the code in ``root``'s ``pipeline`` package ("": no root)."""
    if root is None:
        return ""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(pathlib.Path(root, "pipeline").rglob("*.py")):
        digest.update(f"{path}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def shim(python: str, socket_path: str, startup: dict, root: str | None, imported: str) -> None:
    """Be ``python ARGS`` (this process's ``sys.argv``): a memlab module (``-m pipeline...``)
    in an environment whose start-up variables are ``startup`` is forked by the server at
    ``socket_path``, with this process's stdout and stderr, and this process ends as it does;
    anything else execs the interpreter ``python``. So does a run of ``root``'s code when it
    is no longer the code the server ``imported`` (:func:`_code`)."""
    args = sys.argv[1:]
    memlab = len(args) > 1 and args[0] == "-m" and args[1].split(".")[0] == "pipeline"
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if not memlab or any("numerics" in a for a in args) or _startup({**os.environ}) != startup:
            raise OSError("not for the server")
        if _code(root) != imported:
            raise OSError("the code changed since the server imported it")
        conn.connect(socket_path)
    except OSError:  # or the server is gone
        os.execv(python, [python, *args])
    _request(conn, args, os.getcwd(), {**os.environ}, [1, 2])
    replies = conn.makefile("rb")
    _pid, code = int(replies.readline()), int(replies.readline())  # its pid, then how it ended
    if code < 0:  # killed by a signal: so is this process
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


class Forked:
    """A run forked by the server, used as a ``subprocess.Popen`` with text pipes is."""

    def __init__(self, command: list[str], cwd, env: dict[str, str], socket_path: str) -> None:
        self.args = [sys.executable, *command]
        self.returncode: int | None = None
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._conn.connect(socket_path)
        _request(self._conn, command, cwd, env, [out_w, err_w])
        os.close(out_w)
        os.close(err_w)
        self._reply = b""
        self.pid = int(self._line(None))
        self.stdout = open(out_r, encoding="utf-8", errors="replace")  # noqa: SIM115
        self.stderr = open(err_r, encoding="utf-8", errors="replace")  # noqa: SIM115
        self._output: dict[int, list[bytes]] = {out_r: [], err_r: []}

    def _line(self, timeout: float | None) -> bytes | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._reply:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self._conn], [], [], left)[0]:
                return None
            chunk = self._conn.recv(64)
            if not chunk:
                raise RuntimeError("the test's prefork server went away during a run")
            self._reply += chunk
        line, self._reply = self._reply.split(b"\n", 1)
        return line

    def poll(self) -> int | None:
        if self.returncode is None:
            line = self._line(0)
            if line is not None:
                self.returncode = int(line)
                self._conn.close()  # the server reaps the child now
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            line = self._line(timeout)
            if line is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.returncode = int(line)
            self._conn.close()
        return self.returncode

    def communicate(self, input=None, timeout: float | None = None) -> tuple[str, str]:  # noqa: A002
        """Read both pipes to their end, then wait: as ``Popen.communicate``, which may be
        called again after a ``TimeoutExpired``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        open_fds = [fd for fd in self._output if not self._closed(fd)]
        while open_fds:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            for fd in select.select(open_fds, [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if chunk:
                    self._output[fd].append(chunk)
                else:
                    open_fds.remove(fd)
                    self._output[fd].append(b"")  # the end: an empty chunk last
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        out, err = (b"".join(chunks).decode("utf-8", "replace") for chunks in self._output.values())
        self.stdout.close()
        self.stderr.close()
        return out, err

    def _closed(self, fd: int) -> bool:
        chunks = self._output[fd]
        return bool(chunks) and chunks[-1] == b""

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # ended: its pid may not be its own anymore once reaped
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.returncode is None:
            self.communicate()


if __name__ == "__main__":
    serve(*sys.argv[1:3])
