"""Child processes of the functional tests and the small helpers every component shares.

- Where things are: ``FUNCTIONAL_DIR`` (this package), ``OPENSTACK_DIR`` (the driver's
  folder, openstack/) and ``REPO_ROOT`` (the Cairn repository).
- :class:`Process`: a child in its own session, its stdout and stderr in a log file, stopped
  by its own process group.
- :func:`log` (progress lines), :func:`keep_dirs` (CAIRN_KEEP_TEST_DIRS), :func:`free_port`,
  :func:`wait_for` (poll until ready) and :func:`tail` (the end of a log).

Only the standard library is used here.
"""

import os
import signal
import socket
import subprocess
import time

FUNCTIONAL_DIR = os.path.dirname(os.path.abspath(__file__))
OPENSTACK_DIR = os.path.dirname(FUNCTIONAL_DIR)
REPO_ROOT = os.path.dirname(OPENSTACK_DIR)


def log(msg):
    """Prints a progress line of the harness (flushed, so it interleaves with test output)."""
    print('  [harness %s] %s' % (time.strftime('%H:%M:%S'), msg), flush=True)


def keep_dirs():
    """True when CAIRN_KEEP_TEST_DIRS is set: temporary directories are kept for a post-mortem."""
    return bool(os.environ.get('CAIRN_KEEP_TEST_DIRS'))


def free_port(host='127.0.0.1'):
    """A TCP port that was free a moment ago on ``host`` (bound to 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(check, timeout, what, interval=0.5):
    """Calls ``check()`` until it returns something truthy and returns that.

    :raises TimeoutError: naming ``what`` (and the last exception ``check`` raised, if any)
        after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - reported when the wait times out
            last = e
        if time.monotonic() > deadline:
            raise TimeoutError('%s: not within %d s%s' % (what, timeout, '' if last is None else ' (last error: %r)' % (last,)))
        time.sleep(interval)


def tail(path, lines=40):
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    try:
        with open(path, 'rb') as f:
            data = f.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(data.splitlines()[-lines:])


class Process:
    """A child process in its own session, with stdout and stderr going to a log file."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        """Starts ``argv``; ``name`` is used in messages."""
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, 'ab')
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, cwd=cwd, start_new_session=True)

    @property
    def pid(self):
        """The child's process id (also its process group id)."""
        return self.proc.pid

    def alive(self):
        """True while the child has not exited."""
        return self.proc.poll() is None

    def check_alive(self):
        """:raises RuntimeError: with the log's tail when the child has exited."""
        if not self.alive():
            raise RuntimeError('%s exited with %s:\n%s' % (self.name, self.proc.returncode, tail(self.log_path)))

    def stop(self, sig=signal.SIGTERM, timeout=30, group=True):
        """Sends ``sig`` (to the whole process group when ``group``), waits up to ``timeout`` s,
        then SIGKILLs the group. Returns the exit code."""
        if self.alive():
            try:
                if group:
                    os.killpg(self.proc.pid, sig)
                else:
                    self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log('%s did not stop within %d s of %s: SIGKILL' % (self.name, timeout, sig.name))
        # Whatever is left in its group (workers, node children) goes too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        return self.proc.returncode
