"""Delayed messages: send ``{"channel", "content", "delay"}`` to ``asgi.delay``, get ``content`` on ``channel`` later.

Add ``"channels.delay"`` to ``INSTALLED_APPS``, run ``manage.py migrate``
and keep ``manage.py rundelay`` running beside the workers::

    from channels import Channel

    Channel("asgi.delay").send({
        "channel": "reminders",
        "content": {"user": 42},
        "delay": 30_000,   # milliseconds
    }, immediately=True)

Pending messages are rows in the database, so stopping or restarting
``rundelay`` loses none of them; what fell due meanwhile is sent as soon as
it runs again.
"""
