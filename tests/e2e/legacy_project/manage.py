#!/usr/bin/env python3
"""manage.py of the Channels 1.1.8-style project (unchanged from what 1.x generated)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveblog.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
