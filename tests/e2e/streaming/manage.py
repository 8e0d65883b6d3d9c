#!/usr/bin/env python3
"""manage.py of the streaming project: Channels 2-4 HTTP consumers (server-sent events, long polling) on workers."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
