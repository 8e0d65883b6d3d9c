import sys


def announce(sender, **kwargs):
    # A 1.x project's hook for per-process setup; the test looks for this line.
    sys.stdout.write("posts: worker process ready (%s)\n" % type(sender).__name__)
    sys.stdout.flush()
