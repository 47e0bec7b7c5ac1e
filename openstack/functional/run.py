"""Runs the functional tests and prints one final plain line ``N passed, N failed``.

    /usr/bin/python3 -m functional.run [--vm] [-k SUBSTRING] [-v]     (from openstack/)

``openstack/run-functional`` calls this. Without ``--vm`` (or ``CAIRN_SLOW=1``) only the
Cinder stack test runs; the nvme-vm attach test is reported as skipped. The exit status is 0
when nothing failed, 1 otherwise.
"""

import argparse
import os
import sys
import time
import unittest
import warnings

MODULES = ('functional.test_stack', 'functional.test_vm_attach')


class _Result(unittest.TextTestResult):
    """A text result that also prints each test's duration."""

    passed = 0

    def startTest(self, test):
        """Notes the start time."""
        self._t0 = time.monotonic()
        super().startTest(test)

    def _took(self):
        """Seconds since the current test started."""
        return time.monotonic() - getattr(self, '_t0', time.monotonic())

    def addSuccess(self, test):
        """Prints 'ok (N s)'."""
        unittest.TestResult.addSuccess(self, test)
        self.passed += 1
        self.stream.writeln('ok (%.1f s)' % self._took())
        self.stream.flush()

    def addFailure(self, test, err):
        """Prints 'FAIL (N s)'."""
        unittest.TestResult.addFailure(self, test, err)
        self.stream.writeln('FAIL (%.1f s)' % self._took())
        self.stream.flush()

    def addError(self, test, err):
        """Prints 'ERROR (N s)'."""
        unittest.TestResult.addError(self, test, err)
        self.stream.writeln('ERROR (%.1f s)' % self._took())
        self.stream.flush()


def main(argv=None):
    """Parses the options, runs the selected tests, prints the summary; returns the exit status."""
    p = argparse.ArgumentParser(prog='run-functional', description=__doc__.split('\n')[0])
    p.add_argument('--vm', action='store_true', help='also run the nvme-vm attach test (slow; same as CAIRN_SLOW=1)')
    p.add_argument('-k', dest='pattern', action='append', default=[], help='only tests whose id contains this (repeatable)')
    args = p.parse_args(argv)
    if args.vm:
        os.environ['CAIRN_SLOW'] = '1'
    # eventlet and oslo (imported with os-brick and Cinder) warn about distutils on import.
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    loader = unittest.TestLoader()
    if args.pattern:
        loader.testNamePatterns = ['*%s*' % k for k in args.pattern]
    suite = unittest.TestSuite()
    for name in MODULES:
        suite.addTests(loader.loadTestsFromName(name))
    t0 = time.monotonic()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=_Result)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.passed
    if result.skipped:
        print('%d skipped: %s' % (len(result.skipped), '; '.join('%s (%s)' % (t.id(), why) for t, why in result.skipped)))
    print('functional tests took %.0f s' % (time.monotonic() - t0))
    print('%d passed, %d failed' % (passed, failed), flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
