"""Packaging for the worker-model message bus for Django."""

from setuptools import find_packages, setup

setup(
    name="django-channels-worker",
    version="1.2.0",
    description="Worker-model message bus for Django: interface servers, channel layers and workers",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="BSD",
    python_requires=">=3.10",
    packages=find_packages(include=["channels", "channels.*", "interface_server", "interface_server.*",
                                    "worker", "worker.*", "asgi_backends", "asgi_backends.*"]),
    include_package_data=True,
    package_data={
        "asgi_backends": ["py.typed", "redis/scripts/*.lua"],
        "interface_server": ["py.typed"],
        "worker": ["py.typed"],
        "channels": ["py.typed", "static/channels/js/*.js"],
    },
    install_requires=[
        "Django>=4.2",
        # async_to_sync/sync_to_async of the Channels 2-4 consumer API (a Django dependency too).
        "asgiref>=3.7",
        "Twisted>=23.8",
        "autobahn>=23.1",
        "redis>=5.0",
        "msgpack>=1.0",
        # RESP in C: redis-py's pure-Python packing and parsing took ~15 % of the interface server's samples.
        "hiredis>=2.0",
        "cryptography>=41",
        # llhttp (HTTP/1.1 request parsing); 0.8 has llhttp 9.4 and the URL truncation fix.
        "httptools>=0.8",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-timeout", "websocket-client>=1.6", "sphinx>=7", "hypothesis>=6"],
        "hiredis": [],  # now a dependency; kept so '.[hiredis]' still installs
        # ssl: endpoints of the interface server (pyOpenSSL, service_identity, idna).
        "tls": ["Twisted[tls]>=23.8"],
    },
    entry_points={
        "console_scripts": [
            "interface-server = interface_server.cli:main",
        ],
    },
    classifiers=[
        "Framework :: Django",
        "Programming Language :: Python :: 3",
    ],
)
