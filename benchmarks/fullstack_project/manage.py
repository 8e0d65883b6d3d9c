#!/usr/bin/env python3
"""manage.py of the full-stack benchmark project (runs on this project and on Channels 1.1.8)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
